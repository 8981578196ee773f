import type { CommandSpec } from '../command.ts';
import { accountCommands } from './account.ts';
import { balanceCommands } from './balance.ts';
import { billCommands } from './bill.ts';
import { codeCommands } from './codes.ts';
import { fundsCommands } from './funds.ts';
import { keyCommands } from './key.ts';
import { offerCommands } from './offers.ts';
import { securityCommands } from './security.ts';
import { usageCommands } from './usage.ts';

/** Every command, in the order `tokengrid --help` lists them. */
export const COMMANDS: CommandSpec[] = [
  ...accountCommands,
  ...keyCommands,
  ...offerCommands,
  ...fundsCommands,
  ...balanceCommands,
  ...usageCommands,
  ...codeCommands,
  ...billCommands,
  ...securityCommands,
];

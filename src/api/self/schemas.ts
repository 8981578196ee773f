import { z } from 'zod';

export const selfSchemas = {
  redeem: z.object({ code: z.string().min(1).max(64) }).strict(),
};

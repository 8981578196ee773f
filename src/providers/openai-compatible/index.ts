export { createOpenAICompatibleAdapter, type OpenAICompatibleOptions } from './adapter.ts';

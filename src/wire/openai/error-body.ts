import { ERROR_CODES, type ErrorCode } from '../../core/index.ts';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

/** The body OpenAI clients parse into APIError: `type` from the registry, our stable code as `code`. */
export function openaiErrorBody(code: ErrorCode, message: string, param: string | null = null): OpenAIErrorBody {
  return { error: { message, type: ERROR_CODES[code].openaiType, param, code } };
}

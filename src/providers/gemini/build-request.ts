import type { ChatMessage, ChatRequest, ContentPart, ToolChoice } from '../../wire/index.ts';
import type { GeminiContent, GeminiGenerateContentRequest, GeminiGenerationConfig, GeminiPart } from './wire-types.ts';

/**
 * Gemini 3 rejects a replayed functionCall part without the thoughtSignature it was issued with
 * ("Function call ... is missing a thought_signature"). The canonical model has no slot to carry the
 * signature through the client, so every replayed model turn gets Google's documented bypass value
 * (https://ai.google.dev/gemini-api/docs/thought-signatures, FAQ); older models ignore it.
 */
export const THOUGHT_SIGNATURE_BYPASS = 'skip_thought_signature_validator';

/** Canonical chat request -> generateContent body. Pure; the model goes in the URL, not the body. */
export function buildGenerateContentRequest(req: ChatRequest): GeminiGenerateContentRequest {
  const out: GeminiGenerateContentRequest = { contents: buildContents(req.messages) };
  const systemParts = systemTexts(req.messages);
  if (systemParts.length > 0) out.systemInstruction = { parts: systemParts.map((text) => ({ text })) };
  if (req.tools !== undefined && req.tools.length > 0) {
    out.tools = [
      {
        functionDeclarations: req.tools.map((t) => ({
          name: t.name,
          ...(t.description !== undefined ? { description: t.description } : {}),
          // parametersJsonSchema takes full JSON Schema (additionalProperties, $defs, ...), which clients
          // written for OpenAI send; the older `parameters` field takes an OpenAPI subset and 400s on those.
          ...(isNonEmptyObject(t.parameters) ? { parametersJsonSchema: t.parameters } : {}),
        })),
      },
    ];
    if (req.toolChoice !== undefined) out.toolConfig = { functionCallingConfig: toolChoiceConfig(req.toolChoice) };
  }
  const generationConfig = buildGenerationConfig(req);
  if (Object.keys(generationConfig).length > 0) out.generationConfig = generationConfig;
  return out;
}

function toolChoiceConfig(choice: ToolChoice): { mode: 'AUTO' | 'ANY' | 'NONE'; allowedFunctionNames?: string[] } {
  if (choice === 'auto') return { mode: 'AUTO' };
  if (choice === 'none') return { mode: 'NONE' };
  if (choice === 'required') return { mode: 'ANY' };
  return { mode: 'ANY', allowedFunctionNames: [choice.name] };
}

function buildGenerationConfig(req: ChatRequest): GeminiGenerationConfig {
  const g: GeminiGenerationConfig = {};
  if (req.maxTokensOutput !== undefined) g.maxOutputTokens = req.maxTokensOutput;
  if (req.temperature !== undefined) g.temperature = req.temperature;
  if (req.topP !== undefined) g.topP = req.topP;
  if (req.topK !== undefined) g.topK = req.topK;
  if (req.stop !== undefined && req.stop.length > 0) g.stopSequences = req.stop;
  if (req.seed !== undefined) g.seed = req.seed;
  const format = req.responseFormat;
  if (format !== undefined && format.type !== 'text') {
    g.responseMimeType = 'application/json';
    // responseJsonSchema (not responseSchema) for the same reason as parametersJsonSchema above.
    if (format.type === 'json_schema') g.responseJsonSchema = format.schema;
  }
  return g;
}

function systemTexts(messages: ChatMessage[]): string[] {
  const texts: string[] = [];
  for (const m of messages) {
    if (m.role !== 'system') continue;
    for (const p of m.content) if (p.type === 'text' && p.text !== '') texts.push(p.text);
  }
  return texts;
}

/** Tool results carry only the call id, but Gemini's functionResponse needs the function name. */
function toolNamesById(messages: ChatMessage[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of messages) for (const p of m.content) if (p.type === 'tool_call') names.set(p.id, p.name);
  return names;
}

function buildContents(messages: ChatMessage[]): GeminiContent[] {
  const names = toolNamesById(messages);
  const contents: GeminiContent[] = [];
  for (const m of messages) {
    if (m.role === 'system') continue;
    const role = m.role === 'assistant' ? 'model' : 'user';
    const parts: GeminiPart[] = [];
    for (const p of m.content) {
      const part = toGeminiPart(p, names);
      if (part !== undefined) parts.push(part);
    }
    if (parts.length === 0) continue; // Gemini rejects a content with no parts
    const last = contents[contents.length - 1];
    // Parallel tool results arrive as one OpenAI `tool` message each; Gemini wants them in one turn.
    if (last !== undefined && last.role === role) for (const p of parts) last.parts.push(p);
    else contents.push({ role, parts });
  }
  for (const c of contents) if (c.role === 'model') signFirstFunctionCall(c);
  return contents;
}

function signFirstFunctionCall(content: GeminiContent): void {
  const first = content.parts.find((p) => p.functionCall !== undefined);
  if (first !== undefined && first.thoughtSignature === undefined) first.thoughtSignature = THOUGHT_SIGNATURE_BYPASS;
}

function toGeminiPart(p: ContentPart, names: Map<string, string>): GeminiPart | undefined {
  switch (p.type) {
    case 'text':
      return p.text === '' ? undefined : { text: p.text }; // Gemini 400s on an empty text part
    case 'image':
      return imagePart(p.url, p.mediaType);
    case 'tool_call':
      return { functionCall: { name: p.name, args: parseArgs(p.argumentsJson) } };
    case 'tool_result': {
      const name = names.get(p.toolCallId);
      // Without the name Gemini cannot match the result to a call; keep the information as text.
      if (name === undefined) return { text: `Result of tool call ${p.toolCallId}:\n${p.content}` };
      return { functionResponse: { name, response: toolResponse(p.content, p.isError === true) } };
    }
  }
}

/** Gemini's args is a Struct: a JSON object. Anything else is wrapped rather than dropped. */
function parseArgs(json: string): Record<string, unknown> {
  if (json.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(json);
    return isPlainObject(v) ? v : { value: v };
  } catch {
    return { raw: json };
  }
}

/**
 * FunctionResponse.response: a JSON object result is passed as is; text goes under `output`, errors
 * under `error`, the keys the API reference reserves for exactly that.
 */
function toolResponse(content: string, isError: boolean): Record<string, unknown> {
  if (isError) return { error: content };
  const trimmed = content.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(content);
      if (isPlainObject(v)) return v;
    } catch {
      /* not JSON: fall through to text */
    }
  }
  return { output: content };
}

const DATA_URL_PREFIX = 'data:';

function imagePart(url: string, mediaType: string | undefined): GeminiPart {
  if (url.startsWith(DATA_URL_PREFIX)) {
    const comma = url.indexOf(',');
    const meta = comma < 0 ? '' : url.slice(DATA_URL_PREFIX.length, comma);
    const mimeType = meta.split(';')[0] || mediaType || 'application/octet-stream';
    const data = comma < 0 ? '' : url.slice(comma + 1);
    const isBase64 = meta.split(';').includes('base64');
    return { inlineData: { mimeType, data: isBase64 ? data : Buffer.from(decodeURIComponent(data)).toString('base64') } };
  }
  const mimeType = mediaType ?? guessImageMimeType(url);
  return { fileData: mimeType === undefined ? { fileUri: url } : { mimeType, fileUri: url } };
}

const IMAGE_EXTENSIONS: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  heic: 'image/heic',
  heif: 'image/heif',
};

function guessImageMimeType(url: string): string | undefined {
  const path = url.split(/[?#]/, 1)[0] ?? '';
  const dot = path.lastIndexOf('.');
  if (dot < 0) return undefined;
  return IMAGE_EXTENSIONS[path.slice(dot + 1).toLowerCase()];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonEmptyObject(v: unknown): v is Record<string, unknown> {
  return isPlainObject(v) && Object.keys(v).length > 0;
}

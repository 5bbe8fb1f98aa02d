// A typed client over the OpenAPI document (openapi-fetch), with the access
// token added to every request and one renewal attempted on a 401.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';
import { getLang } from '../i18n';

export type Schemas = components['schemas'];
export type CaseView = Schemas['CaseView'];
export type CaseDetail = Schemas['CaseDetail'];
export type CasePage = Schemas['CasePage'];
export type ActionIn = Schemas['ActionIn'];
export type TaskView = Schemas['TaskView'];
export type StreamEvent = Schemas['StreamEvent'];
export type ApiErrorBody = Schemas['ApiError'];
export type Channel = CaseView['channel'];
export type Status = CaseView['status'];
export type Action = NonNullable<paths['/v1/cases/{id}/{action}']['post']['parameters']['path']['action']>;

/** A refusal by the server (or the network), with the message to show. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public body: ApiErrorBody,
  ) {
    super(body.message);
  }
  get shown(): string {
    return getLang() === 'zh' ? this.body.message_zh || this.body.message : this.body.message;
  }
}

type TokenSource = {
  token(): string | null;
  renew(): Promise<boolean>;
};

let source: TokenSource = { token: () => null, renew: async () => false };

export function useTokens(s: TokenSource): void {
  source = s;
}

export function bearer(): string | null {
  return source.token();
}

/** Renews the access token (once, shared with other callers); false when signed out. */
export function renewToken(): Promise<boolean> {
  return source.renew();
}

const auth: Middleware = {
  onRequest({ request }) {
    const tok = source.token();
    if (tok && !request.headers.has('Authorization')) request.headers.set('Authorization', `Bearer ${tok}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(auth);

type Res<T> = { data?: T; error?: unknown; response: Response };

/**
 * Runs a request, renewing the token once on a 401, and returns its data or
 * throws an ApiError carrying the server's message.
 */
export async function call<T>(run: () => Promise<Res<T>>): Promise<T> {
  let res: Res<T>;
  try {
    res = await run();
    if (res.response.status === 401 && (await source.renew())) res = await run();
    // 503: a dependency was unavailable and nothing was done; once more
    // after a second (an action carries its version, so it cannot apply twice).
    if (res.response.status === 503) {
      await new Promise((r) => setTimeout(r, 1000));
      res = await run();
    }
  } catch (e) {
    throw new ApiError(0, {
      code: 'network',
      message: 'network error: ' + String(e),
      message_zh: '网络错误，请稍后重试',
    });
  }
  if (res.response.ok) return res.data as T;
  const err = res.error as Partial<ApiErrorBody> | undefined;
  throw new ApiError(res.response.status, {
    code: err?.code ?? `http_${res.response.status}`,
    message: err?.message ?? res.response.statusText,
    message_zh: err?.message_zh ?? err?.message ?? `请求失败（${res.response.status}）`,
    field: err?.field ?? null,
  });
}

// Signing in and staying signed in. The access token lives in this module's
// memory only. The refresh credential is an HttpOnly SameSite=Strict cookie
// on /v1/auth that page scripts cannot read (asked for with
// `X-Refresh-Cookie: 1`); a server that does not set it yet answers with a
// `refresh_token` in the body, which is then kept in memory only (never in
// any storage).
import { useTokens } from './api/client';

export type Claims = { sub: string; role: string; scope: string; channel?: string | null; exp?: number };

type TokenBody = { access_token: string; expires_in: number; refresh_token?: string };

let access: string | null = null;
let refreshInMemory: string | null = null;
let claims: Claims | null = null;
let timer: number | undefined;
let renewing: Promise<boolean> | null = null;
const listeners: ((c: Claims | null) => void)[] = [];

export function onAuthChange(f: (c: Claims | null) => void): void {
  listeners.push(f);
}

export function currentClaims(): Claims | null {
  return claims;
}

export function accessToken(): string | null {
  return access;
}

/** The JWT's payload (not verified: the server does that). */
export function decodeJwt(tok: string): Claims {
  const part = tok.split('.')[1] ?? '';
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as Claims;
}

function take(body: TokenBody): void {
  const wasSignedIn = claims !== null;
  access = body.access_token;
  refreshInMemory = body.refresh_token ?? null;
  claims = decodeJwt(body.access_token);
  window.clearTimeout(timer);
  // Renew at 80 % of the lifetime (at least 5 s ahead).
  const ms = Math.max(5_000, body.expires_in * 1000 * 0.8);
  timer = window.setTimeout(() => void renew(), Math.min(ms, 2 ** 31 - 1));
  if (!wasSignedIn) listeners.forEach((f) => f(claims));
}

function drop(): void {
  const was = claims !== null;
  access = null;
  refreshInMemory = null;
  claims = null;
  window.clearTimeout(timer);
  if (was) listeners.forEach((f) => f(null));
}

async function tokenRequest(body: object): Promise<Response> {
  return fetch('/v1/auth/token', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Refresh-Cookie': '1' },
    body: JSON.stringify(body),
  });
}

export class SignInError extends Error {
  constructor(
    public zh: string,
    en: string,
  ) {
    super(en);
  }
}

export async function signIn(username: string, password: string): Promise<Claims> {
  let res: Response;
  try {
    res = await tokenRequest({ grant_type: 'password', username, password });
    // Busy (503: a dependency unavailable, or too many sign-ins at once):
    // wait as told (Retry-After, at most 5 s; else 1 s) and try twice more.
    for (let i = 0; i < 2 && res.status === 503; i++) {
      const wait = Math.min(5, Number(res.headers.get('Retry-After') ?? '1') || 1);
      await new Promise((r) => setTimeout(r, wait * 1000));
      res = await tokenRequest({ grant_type: 'password', username, password });
    }
  } catch {
    throw new SignInError('网络错误，请稍后重试', 'Network error, try again');
  }
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { message?: string; message_zh?: string };
    throw new SignInError(e.message_zh ?? '登录失败', e.message ?? 'Sign-in failed');
  }
  take((await res.json()) as TokenBody);
  return claims!;
}

/** Renews the access token (cookie first, else the in-memory refresh token). */
export function renew(): Promise<boolean> {
  if (renewing) return renewing;
  renewing = (async () => {
    try {
      const body: Record<string, string> = { grant_type: 'refresh_token' };
      if (refreshInMemory) body.refresh_token = refreshInMemory;
      const res = await tokenRequest(body);
      if (!res.ok) {
        if (res.status === 400 || res.status === 401) drop();
        return false;
      }
      take((await res.json()) as TokenBody);
      return true;
    } catch {
      return false;
    } finally {
      renewing = null;
    }
  })();
  return renewing;
}

/** On page load: a session survives a reload only through the cookie. */
export async function resume(): Promise<boolean> {
  try {
    const res = await tokenRequest({ grant_type: 'refresh_token' });
    if (!res.ok) return false;
    take((await res.json()) as TokenBody);
    return true;
  } catch {
    return false;
  }
}

export async function signOut(): Promise<void> {
  const tok = access;
  drop();
  if (!tok) return;
  try {
    await fetch('/v1/auth/revoke', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Authorization: `Bearer ${tok}` },
    });
  } catch {
    /* the token is gone from memory either way */
  }
}

useTokens({ token: () => access, renew });

// JSON over the service's own origin with the session's bearer token.
import { forgetToken, savedToken } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    detail: string,
  ) {
    super(detail);
  }
}

type Listener = () => void;
const signedOut: Listener[] = [];

/** Called when the server no longer accepts the token (401): the screen asks for another. */
export function onSignedOut(listener: Listener): void {
  signedOut.push(listener);
}

export function expire(): void {
  forgetToken();
  signedOut.forEach((l) => l());
}

export function authHeaders(): Record<string, string> {
  const token = savedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function getJson<T>(path: string): Promise<T> {
  return request<T>("GET", path);
}

export async function postJson<T>(path: string, body: unknown, key?: string): Promise<T> {
  return request<T>("POST", path, body, key);
}

async function request<T>(method: string, path: string, body?: unknown, key?: string): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const parsed: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const err = (parsed ?? {}) as { error?: string; detail?: unknown };
    if (response.status === 401) expire();
    const detail = typeof err.detail === "string" ? err.detail : JSON.stringify(err.detail ?? "");
    throw new ApiError(response.status, err.error ?? "error", detail);
  }
  return parsed as T;
}

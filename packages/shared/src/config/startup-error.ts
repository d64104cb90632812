/**
 * Start-up failures caused by the environment (a port in use, an unusable DATA_DIR, a database
 * or Redis that cannot be reached) end the process like configuration errors do: exit 1 and one
 * line naming the variable, `startup failed: <VARIABLE>: <problem>`, never a secret.
 */
export class StartupError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`startup failed: ${variable}: ${oneLine(problem)}`);
    this.name = 'StartupError';
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

interface SystemError {
  code?: string;
  syscall?: string;
  port?: number;
  address?: string;
  message?: string;
}

/** A listen/bind failure as `startup failed: <portVariable>: ...`, or null when it is not one. */
export function listenStartupError(err: unknown, portVariable: string, hostVariable: string): StartupError | null {
  const e = (err ?? {}) as SystemError;
  const where = e.address !== undefined && e.port !== undefined ? `${e.address}:${e.port}` : e.address !== undefined ? e.address : 'the listen address';
  switch (e.code) {
    case 'EADDRINUSE':
      return new StartupError(portVariable, `${where} is already in use (EADDRINUSE)`);
    case 'EACCES':
      return new StartupError(portVariable, `no permission to listen on ${where} (EACCES; ports below 1024 need privileges)`);
    case 'EADDRNOTAVAIL':
      return new StartupError(hostVariable, `cannot listen on ${where}: not an address of this machine (EADDRNOTAVAIL)`);
    default:
      return null;
  }
}

/** The URL without credentials, for messages: `host:port/database`. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return 'the URL';
  }
}

/** An error's message with every occurrence of the secrets in it replaced. */
export function withoutSecrets(message: string, url: string): string {
  let out = message;
  try {
    const u = new URL(url);
    for (const secret of [u.password, decodeURIComponent(u.password), url]) if (secret) out = out.split(secret).join('[REDACTED]');
  } catch {
    out = out.split(url).join('[REDACTED]');
  }
  return out;
}

/** Bus failures carry stable codes; `retryable` tells a caller whether trying again may help. */
export class BusError extends Error {
  constructor(
    readonly code: 'timeout' | 'remote' | 'closed' | 'bad_reply' | 'queue_full' | 'invalid',
    message: string,
    readonly retryable: boolean,
    readonly remoteCode?: string,
  ) {
    super(message);
    this.name = 'BusError';
  }
}

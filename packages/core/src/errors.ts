/** The three error classes of the brief: retry may help, retry cannot help, invariant broken. */
export type ErrorClass = 'retryable' | 'non_retryable' | 'fatal';

export class PolybotError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly errorClass: ErrorClass = 'non_retryable',
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'PolybotError';
  }

  get retryable(): boolean {
    return this.errorClass === 'retryable';
  }
}

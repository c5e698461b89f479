/**
 * The one error class of chain actions (viem's style): a one-line `shortMessage` for users, the
 * cause chained for maintainers. Subclasses name where it came from.
 */
export class ChainError extends Error {
  readonly shortMessage: string;
  constructor(shortMessage: string, options?: { cause?: unknown }) {
    super(shortMessage, options);
    this.name = new.target.name;
    this.shortMessage = shortMessage;
  }
}

import Compile from 'typebox/compile';
import { getPublicJson, PublicApiError, type PublicHttpOptions } from './gamma.js';
import { BookSummary } from './schemas.js';

const checkBook = Compile(BookSummary);

/**
 * `GET /book?token_id=` on the CLOB, validated. Used to re-snapshot a local book that went wrong
 * (crossed, or deltas without a snapshot). Levels keep the venue's order: best LAST.
 */
export async function getBook(clobUrl: string, tokenId: string, opts: PublicHttpOptions = {}): Promise<BookSummary> {
  const url = `${clobUrl.replace(/\/+$/, '')}/book?token_id=${encodeURIComponent(tokenId)}`;
  const body = await getPublicJson(url, opts);
  if (!checkBook.Check(body)) {
    const first = checkBook.Errors(body)[0];
    const where = first ? `${first.instancePath || '/'} ${first.message}` : 'unknown shape';
    throw new PublicApiError(`GET ${url} answered a book that does not match BookSummary (${where})`, url, 200, undefined, 'bad_body');
  }
  return body;
}

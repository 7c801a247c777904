// Skapi's project IDs: one string standing for a service and its owner, as Skapi's dashboard
// shows them (`new Skapi("<project id>")`). Decoded here, synchronously, because the constructor
// answers `service` and `owner` — and throws for an ID that does not decode — before the wasm
// has loaded.
//
// An ID is `p1-p2`, both in base 62 (`0-9A-Za-z`). `p2` is the owner's UUID as one number. In
// `p1`, its first character says how long the service's tail is (L); the rest holds the
// service's middle with its first two characters moved to the end, the tail (the region's
// letter first) between them. The region is the four characters the letter stands for.

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const REGION_LETTERS = '0123456789abcdefghijkl';
const REGIONS = ['us31', 'us72', 'ap51', 'ap22', 'ap41', 'eu71', 'ap21', 'us32', 'us71', 'af51', 'ap31',
  'ap43', 'ap23', 'ap42', 'ca01', 'eu01', 'eu72', 'eu51', 'eu73', 'eu11', 'me51', 'sa31'];
/** The tail Skapi's own services have: the region's letter and four characters. */
const TAIL = 5;

function invalid() {
  return Object.assign(new Error('Service ID is invalid.'), { code: 'INVALID_PARAMETER' });
}

/** `{service, owner}` of a project ID; throws `Service ID is invalid.` for anything else. */
export function decodeProjectId(id) {
  const parts = typeof id === 'string' ? id.split('-') : [];
  if (parts.length !== 2 || !parts.every((p) => p && [...p].every((c) => DIGITS.includes(c)))) throw invalid();
  const [p1, p2] = parts;
  const tail = DIGITS.indexOf(p1[0]);
  const c = p1.slice(1);
  if (tail < 1 || c.length < tail + 2) throw invalid();
  const second = c.slice(c.length - tail - 2, c.length - 2);
  const first = c.slice(c.length - 2) + c.slice(0, c.length - tail - 2);
  const region = REGIONS[REGION_LETTERS.indexOf(second[0])];
  if (!region) throw invalid();
  let n = 0n;
  for (const ch of p2) n = n * 62n + BigInt(DIGITS.indexOf(ch));
  const hex = n.toString(16);
  if (hex.length > 32) throw invalid();
  const h = hex.padStart(32, '0');
  const owner = [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join('-');
  return { service: region + first + second.slice(1), owner };
}

/**
 * The project ID of a service and its owner (Skapi's split: a tail of the region's letter and
 * the service's last four characters); `null` when they are not a Skapi service and a UUID.
 */
export function encodeProjectId(service, owner) {
  const region = typeof service === 'string' ? REGIONS.indexOf(service.slice(0, 4)) : -1;
  const hex = typeof owner === 'string' ? owner.replace(/-/g, '') : '';
  const body = region < 0 ? '' : service.slice(4);
  if (body.length < TAIL + 1 || ![...body].every((c) => DIGITS.includes(c)) || !/^[0-9a-f]{32}$/i.test(hex)) return null;
  const first = body.slice(0, body.length - TAIL + 1);
  const second = REGION_LETTERS[region] + body.slice(body.length - TAIL + 1);
  let n = BigInt('0x' + hex);
  let p2 = '';
  do {
    p2 = DIGITS[Number(n % 62n)] + p2;
    n /= 62n;
  } while (n > 0n);
  return DIGITS[TAIL] + first.slice(2) + second + first.slice(0, 2) + '-' + p2;
}

// Skapi's project IDs (js/project-id.mjs), decoded and encoded without a browser: the real ID
// in Skapi's docs, every region, owners with leading zeros, tails of other lengths, and IDs
// that do not decode.
import assert from 'node:assert/strict';
import test from 'node:test';
import { decodeProjectId, encodeProjectId } from '../../js/project-id.mjs';

const REGIONS = ['us31', 'us72', 'ap51', 'ap22', 'ap41', 'eu71', 'ap21', 'us32', 'us71', 'af51', 'ap31',
  'ap43', 'ap23', 'ap42', 'ca01', 'eu01', 'eu72', 'eu51', 'eu73', 'eu11', 'me51', 'sa31'];

test("the ID in Skapi's full example is the tutorial's service and owner", () => {
  // skapi-documentation full-example/intro.md; skapi-tutorial's service.js has the pair.
  const id = '5fRHl9Cw2Qq3eFEc0w-7Zd6TgdLUaFxseKMT1qveY';
  assert.deepEqual(decodeProjectId(id), { service: 'ap220wfRHl9Cw2QqeFEc', owner: 'f8e16604-69e4-451c-9d90-4410f801c006' });
  assert.equal(encodeProjectId('ap220wfRHl9Cw2QqeFEc', 'f8e16604-69e4-451c-9d90-4410f801c006'), id);
});

test('every region letter, and owners from the smallest to the largest', () => {
  const owners = ['00000000-0000-0000-0000-000000000000', '00000000-0000-4000-8000-000000000001', 'ffffffff-ffff-ffff-ffff-ffffffffffff'];
  for (const region of REGIONS) {
    for (const owner of owners) {
      const service = `${region}Zx9q0wfRHl9Cw2QqeFEc`;
      const id = encodeProjectId(service, owner);
      assert.deepEqual(decodeProjectId(id), { service, owner }, id);
    }
  }
});

test('tails of any length decode: the first character says how long', () => {
  // Built by hand: L = 2 and L = 9 (Skapi's own services have 5).
  const body = (tail, first) => first.slice(2) + tail + first.slice(0, 2);
  assert.deepEqual(decodeProjectId(`2${body('3a', 'abcdef')}-1`), { service: 'ap22abcdefa', owner: '00000000-0000-0000-0000-000000000001' });
  assert.deepEqual(decodeProjectId(`9${body('lABCDEFGH', 'xy')}-Z`), { service: 'sa31xyABCDEFGH', owner: '00000000-0000-0000-0000-000000000023' });
});

test('an ID that does not decode is refused with Skapi\'s message', () => {
  const max = encodeProjectId('ap22compat', 'ffffffff-ffff-ffff-ffff-ffffffffffff');
  for (const bad of ['', '<Project ID>', 'abc', '5abc-', '-abc', '5a-b-c', '5fRHl9Cw2Qq3eFEc0w-7Zd6Tg!', 'zfRHl9Cw2Qq3eFEc0w-1', '5fRHl9Cw2QqmeFEc0w-1', '0abc-1', `${max}z`, null, 42]) {
    assert.throws(() => decodeProjectId(bad), { message: 'Service ID is invalid.' }, String(bad));
  }
});

test('a service and owner that make no ID give null', () => {
  assert.equal(encodeProjectId('svc-browser', 'owner-browser'), null);
  assert.equal(encodeProjectId('xx99abcdefgh', '00000000-0000-0000-0000-000000000000'), null, 'no such region');
  assert.equal(encodeProjectId('ap22abcdefgh', 'not-a-uuid'), null);
});

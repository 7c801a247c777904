// Compiled with `tsc --strict` against the package's declarations: every method of SPEC §2.
import Skapi, { Skapi as Named, SkapiError, isPollStopped, type PollingResult, type PendingRequest, type HistoryPage, type StreamResult } from 'skapi-wasm';

const skapi: Skapi = new Named('service', 'owner', { endpoint: 'http://127.0.0.1:8787' });

async function main(): Promise<void> {
  const image = await skapi.clientSecretRequest<{ data: { b64_json: string }[] }>({
    clientSecretName: 'openai',
    url: 'https://api.openai.com/v1/images/generations',
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer $CLIENT_SECRET' },
    data: { model: 'gpt-image-1.5', prompt: 'A cute baby sea otter', n: 1, size: '1024x1024' },
    poll: 1000,
    queue: 'image-jobs',
    expires: 60_000,
    onResponse: (r) => console.log(r),
    onError: (e: SkapiError) => console.error(e.code, e.status_code, e.body),
  });
  if (!isPollStopped(image)) console.log(image.data[0].b64_json);

  const pending = (await skapi.clientSecretRequest({ clientSecretName: 'maps', url: 'https://maps.example/geo', method: 'GET', params: { key: '$CLIENT_SECRET' } })) as PendingRequest;
  const polling = pending.poll({ latency: 500, signal: new AbortController().signal, responseType: 'blob' });
  polling.stop();
  const stopped = await polling;
  console.log(skapi.isPollStopped(stopped), pending.id, pending.in_queue);

  const page: HistoryPage = await skapi.clientSecretRequestHistory({ url: 'https://maps.example/geo', method: 'GET', poll: 2000 }, { limit: 10, fetchMore: true });
  const finals: (PollingResult | { id: string | null; status: 'stopped' })[] = await Promise.all(page.pending);
  const first: PollingResult | undefined = page.list[0];
  console.log(finals.length, first?.status, first?.request_body, page.endOfList, page.startKeyHistory);

  let answer = '';
  const streamed = await skapi.clientSecretRequest({
    clientSecretName: 'openai',
    url: 'https://api.openai.com/v1/chat/completions',
    method: 'POST',
    headers: { Authorization: 'Bearer $CLIENT_SECRET' },
    data: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Hi' }] },
    stream: true,
    onStream: (chunk: string, seq: number, via: 'push' | 'poll') => {
      answer += chunk;
      console.log(seq, via);
    },
  });
  if (!isPollStopped(streamed)) console.log(streamed.status, streamed.status_code, streamed.last_seq, streamed.error?.code, answer);
  const reading = skapi.clientSecretRequestStream(pending.id, { url: 'https://api.openai.com/v1/chat/completions', method: 'POST', since: 3, onStream: (c) => console.log(c) });
  reading.stop();
  const read: StreamResult | unknown = await reading;
  const finalized: { finalized: boolean; message: string } = await skapi.clientSecretRequestFinalize(pending.id, undefined, { url: 'https://api.openai.com/v1/chat/completions', method: 'POST' });
  console.log(read, finalized.finalized, finalized.message);

  await skapi.clientSecretRequest({ clientSecretName: 'openai', url: 'https://api.openai.com/v1/files', method: 'POST', headers: { Authorization: 'Bearer $CLIENT_SECRET' }, data: new Blob(['x'], { type: 'text/plain' }) });
  const audio = new File([new Uint8Array([1, 2])], 'speech.wav', { type: 'audio/wav' });
  await skapi.clientSecretRequest({ clientSecretName: 'openai', url: 'https://api.openai.com/v1/audio/transcriptions', method: 'POST', headers: { Authorization: 'Bearer $CLIENT_SECRET', 'Content-Type': 'multipart/form-data' }, data: { model: 'whisper-1', file: audio, extra: { list: [audio, 'note'] } } });
  // Skapi's current door and names.
  const byProject = new Skapi('5fRHl9Cw2Qq3eFEc0w-7Zd6TgdLUaFxseKMT1qveY', { endpoint: 'http://127.0.0.1:8787' });
  const projectId: string | null = byProject.project_id;
  const models = await skapi.forwardRequest(null, { secretName: 'openai', url: 'https://api.openai.com/v1/models', method: 'GET', headers: { Authorization: 'Bearer $CLIENT_SECRET' }, poll: 1000 });
  const keyless = await skapi.forwardRequest({ q: 'otters' }, { url: 'https://api.example.com/search', method: 'GET', skapiHeaders: { user: true }, service: 'ap22other', owner: 'someone' });
  const upload = document.createElement('form');
  upload.addEventListener('submit', (event: SubmitEvent) => {
    void skapi.forwardRequest(event, {
      secretName: 'openai',
      url: 'https://api.openai.com/v1/audio/transcriptions',
      headers: { Authorization: 'Bearer $CLIENT_SECRET' },
      multipart: true,
      skapiHeaders: true,
      signal: new AbortController().signal,
      onResponse: (res, meta) => console.log(res, meta?.executed),
    });
  });
  const chat = skapi.forwardRequest(new FormData(), { url: 'https://api.example.com/chat', stream: true, realtime: true, onStream: (c) => console.log(c) });
  chat.stop();
  const renamedPage: HistoryPage = await skapi.forwardRequestHistory({ url: 'https://api.openai.com/v1/models', method: 'GET', queue: 'u1', queue_exact: true, queue_exclude: 'u1-bg', compact: true });
  const item: PollingResult | undefined = renamedPage.list[0];
  console.log(projectId, models, keyless, renamedPage.endOfList, item?.executed, item?.request_text, item?.compact);
  console.log((await skapi.cancelForwardRequest({ url: 'https://api.openai.com/v1/models', method: 'GET', id: 'x' })).removed);
  console.log(skapi.stopForwardRequestPolling({ queue: 'u1' }), (await skapi.forwardRequestQueueCount({ queue: 'u1' })).in_queue);
  console.log(await skapi.forwardRequestFinalize('x', 'text', { url: 'https://api.example.com/chat', method: 'POST' }), skapi.forwardRequestStream('x').stop());

  const removed: { removed: boolean; message: string } = await skapi.cancelClientSecretRequest({ url: 'https://maps.example/geo', method: 'GET', id: pending.id });
  const count: number = skapi.stopClientSecretPolling({ queue: 'image-jobs' }) + skapi.stopClientSecretPolling();
  const queue = await skapi.clientSecretRequestQueueCount({ queue: 'image-jobs' });
  const user = await skapi.loginWithToken({ idToken: 'a.b.c', accessToken: 'd.e.f' });
  console.log(removed.removed, count, queue.in_queue, user.user_id, skapi.user?.user_id);
  await skapi.logout();
  const form = document.createElement('form');
  await skapi.clientSecretRequest(form);
  form.addEventListener('submit', (event: SubmitEvent) => void skapi.clientSecretRequest(event));
  console.log(await skapi.getFormResponse());
  try {
    await skapi.clientSecretRequest({ clientSecretName: '', url: 'x', method: 'GET' });
  } catch (e) {
    if (e instanceof SkapiError) console.log(e.name, e.code satisfies string, e.message);
  }
}
void main();

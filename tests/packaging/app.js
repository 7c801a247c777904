// The same little app, built by each bundler: the seed's request through skapi-server, with
// the answer left in <body data-result>.
import { Skapi, SkapiError } from 'skapi-wasm';

const query = new URLSearchParams(location.search);
const skapi = new Skapi('svc-browser', 'owner-browser', { endpoint: query.get('endpoint') });
skapi
  .clientSecretRequest({
    clientSecretName: 'openai',
    url: `${query.get('api')}/v1/images/generations`,
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer $CLIENT_SECRET' },
    data: { model: 'gpt-image-1.5', prompt: 'A cute baby sea otter', n: 1, size: '1024x1024' },
    poll: 50,
  })
  .then((result) => { document.body.dataset.result = JSON.stringify(result); })
  .catch((e) => { document.body.dataset.result = JSON.stringify({ error: e.code, message: e.message, skapiError: e instanceof SkapiError }); });

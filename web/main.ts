// The page: upload a file (or pick an uploaded one), watch it encode, see the frames and the
// sound clips the model gets, ask questions and read the streamed answers. API paths are
// relative, so the page works wherever the server is mounted.
import './style.css';

interface Upload { id: string; filename: string; bytes: number }
interface Encoded { kinds: string[]; positions: number; frame_times: number[]; audio_clips: { start: number; end: number }[] }
interface Message { role: 'user' | 'assistant'; content: unknown }

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const fileInput = $<HTMLInputElement>('file');
const drop = $<HTMLDivElement>('drop');
const uploads = $<HTMLSelectElement>('uploads');
const progressRow = $<HTMLDivElement>('progress-row');
const progress = $<HTMLProgressElement>('progress');
const progressLabel = $<HTMLLabelElement>('progress-label');
const mediaStatus = $<HTMLParagraphElement>('media-status');
const frames = $<HTMLDivElement>('frames');
const clips = $<HTMLUListElement>('clips');
const player = $<HTMLVideoElement>('player');
const sound = $<HTMLAudioElement>('sound');
const log = $<HTMLOListElement>('log');
const form = $<HTMLFormElement>('ask');
const question = $<HTMLTextAreaElement>('question');
const send = $<HTMLButtonElement>('send');
const stop = $<HTMLButtonElement>('stop');

const STORAGE_KEY = 'video-llama-conversation';
let media: Upload | undefined;
let conversation: Message[] = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? '[]') as Message[];
let answering: AbortController | undefined;

/** Reads `data:` records of a server-sent event stream; `event` is the record's event name. */
async function* events(response: Response): AsyncGenerator<{ event: string; data: string }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const record = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(record)?.[1] ?? 'message';
      const data = record.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      yield { event, data };
    }
  }
}

async function errorText(response: Response): Promise<string> {
  const body = await response.json().catch(() => undefined) as { error?: { message?: string } } | undefined;
  return body?.error?.message ?? `HTTP ${response.status}`;
}

function seconds(value: number): string {
  return `${value.toFixed(1)} s`;
}

async function showModel(): Promise<void> {
  const status = $<HTMLParagraphElement>('model');
  const health = await fetch('health').then((r) => r.json() as Promise<{ status: string }>).catch(() => ({ status: 'unreachable' }));
  if (health.status !== 'ready') {
    status.textContent = `Model ${health.status}…`;
    if (health.status === 'loading') setTimeout(() => void showModel(), 1000);
    return;
  }
  const models = await (await fetch('v1/models')).json() as { data: { id: string; description: string; capabilities: string[] }[] };
  const model = models.data[0]!;
  status.textContent = `${model.id}: ${model.description} (${model.capabilities.join(', ')})`;
}

async function listUploads(): Promise<void> {
  const list = await (await fetch('v1/files')).json() as { data: Upload[] };
  const selected = uploads.value;
  uploads.replaceChildren(new Option('—', ''), ...list.data.map((u) => new Option(`${u.filename} (${Math.round(u.bytes / 1024)} KiB)`, u.id)));
  uploads.value = selected;
  for (const upload of list.data) uploadsById.set(upload.id, upload);
}
const uploadsById = new Map<string, Upload>();

/** Draws a frame of the local copy of the media at each sampled time. */
async function showFrames(times: number[], source: string): Promise<void> {
  frames.replaceChildren();
  if (times.length === 0) return;
  player.src = source;
  await new Promise((resolve, reject) => { player.onloadeddata = resolve; player.onerror = reject; });
  for (const [i, time] of times.entries()) {
    player.currentTime = time;
    await new Promise((resolve) => { player.onseeked = resolve; });
    const canvas = document.createElement('canvas');
    canvas.width = 160;
    canvas.height = Math.round(160 * player.videoHeight / Math.max(1, player.videoWidth));
    canvas.getContext('2d')!.drawImage(player, 0, 0, canvas.width, canvas.height);
    const figure = document.createElement('figure');
    const image = document.createElement('img');
    image.src = canvas.toDataURL('image/jpeg', 0.8);
    image.alt = `Frame ${i + 1}, at ${seconds(time)}`;
    const caption = document.createElement('figcaption');
    caption.textContent = seconds(time);
    figure.append(image, caption);
    frames.append(figure);
  }
}

function showImage(source: string): void {
  const figure = document.createElement('figure');
  const image = document.createElement('img');
  image.src = source;
  image.alt = 'The image';
  figure.append(image);
  frames.replaceChildren(figure);
}

/** One button per audio clip, playing that stretch of the sound. */
function showClips(spans: Encoded['audio_clips'], source: string): void {
  clips.replaceChildren();
  sound.src = source;
  spans.forEach((span, i) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = `Clip ${i + 1}: ${seconds(span.start)}–${seconds(span.end)}`;
    button.setAttribute('aria-label', `Play audio clip ${i + 1}, ${seconds(span.start)} to ${seconds(span.end)}`);
    button.onclick = () => {
      sound.currentTime = span.start;
      sound.ontimeupdate = () => { if (sound.currentTime >= span.end) sound.pause(); };
      void sound.play();
    };
    const item = document.createElement('li');
    item.append(button);
    clips.append(item);
  });
}

/** Encodes the upload on the server, showing progress, then what the model gets. */
async function encode(upload: Upload, source: string): Promise<void> {
  media = upload;
  progressRow.hidden = false;
  progress.value = 0;
  progressLabel.textContent = `Encoding ${upload.filename}`;
  mediaStatus.textContent = '';
  const response = await fetch(`v1/files/${upload.id}/encode`, { method: 'POST' });
  if (!response.ok) {
    mediaStatus.textContent = `Could not encode: ${await errorText(response)}`;
    return;
  }
  for await (const { event, data } of events(response)) {
    if (event === 'progress') progress.value = (JSON.parse(data) as { fraction: number }).fraction;
    if (event === 'error') mediaStatus.textContent = `Could not encode: ${(JSON.parse(data) as { error: { message: string } }).error.message}`;
    if (event === 'done') {
      const encoded = JSON.parse(data) as Encoded;
      progress.value = 1;
      progressLabel.textContent = `Encoded ${upload.filename}`;
      mediaStatus.textContent = `${upload.filename}: ${encoded.kinds.join(' + ')}, ${encoded.positions} positions in the prompt.`;
      if (encoded.kinds.includes('image')) showImage(source);
      else await showFrames(encoded.frame_times, source);
      showClips(encoded.audio_clips, source);
    }
  }
}

async function uploadFile(file: File): Promise<void> {
  mediaStatus.textContent = `Uploading ${file.name}…`;
  const body = new FormData();
  body.append('purpose', 'user_data');
  body.append('file', file);
  const response = await fetch('v1/files', { method: 'POST', body });
  if (!response.ok) {
    mediaStatus.textContent = `Upload failed: ${await errorText(response)}`;
    return;
  }
  const upload = await response.json() as Upload;
  await listUploads();
  uploads.value = upload.id;
  await encode(upload, URL.createObjectURL(file));
}

function addEntry(role: Message['role'], text: string): HTMLParagraphElement {
  const item = document.createElement('li');
  item.className = role;
  const who = document.createElement('strong');
  who.textContent = role === 'user' ? 'You' : 'Model';
  const body = document.createElement('p');
  body.className = role === 'assistant' ? 'answer' : 'question';
  body.textContent = text;
  item.append(who, body);
  log.append(item);
  return body;
}

function showConversation(): void {
  log.replaceChildren();
  for (const message of conversation) {
    const content = message.content;
    const text = typeof content === 'string' ? content
      : (content as { type: string; text?: string }[]).map((p) => p.text ?? `[${media?.filename ?? 'media'}]`).join(' ');
    addEntry(message.role, text);
  }
}

async function ask(text: string): Promise<void> {
  // The media goes with the first question about it; later turns keep it in the history.
  const first = conversation.length === 0 && media;
  const content = first ? [{ type: 'file', file: { file_id: media!.id } }, { type: 'text', text }] : text;
  conversation.push({ role: 'user', content });
  addEntry('user', text);
  const answer = addEntry('assistant', '');
  answer.setAttribute('aria-busy', 'true');
  answering = new AbortController();
  send.disabled = true;
  stop.disabled = false;
  let reply = '';
  try {
    const response = await fetch('v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: conversation, stream: true }),
      signal: answering.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    for await (const { data } of events(response)) {
      if (data === '[DONE]') break;
      const chunk = JSON.parse(data) as { choices?: { delta: { content?: string } }[]; error?: { message: string } };
      if (chunk.error) throw new Error(chunk.error.message);
      reply += chunk.choices?.[0]?.delta.content ?? '';
      answer.textContent = reply;
    }
  } catch (error) {
    const stopped = (error as Error).name === 'AbortError';
    answer.textContent = `${reply}${stopped ? ' [stopped]' : ` [error: ${(error as Error).message}]`}`;
    answer.classList.add(stopped ? 'stopped' : 'failed');
  } finally {
    answer.removeAttribute('aria-busy');
    conversation.push({ role: 'assistant', content: reply });
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(conversation));
    answering = undefined;
    send.disabled = false;
    stop.disabled = true;
    question.focus();
  }
}

fileInput.addEventListener('change', () => { if (fileInput.files?.[0]) void uploadFile(fileInput.files[0]); });
drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) void uploadFile(file);
});
uploads.addEventListener('change', async () => {
  const upload = uploadsById.get(uploads.value);
  if (!upload) return;
  const blob = await (await fetch(`v1/files/${upload.id}/content`)).blob();
  await encode(upload, URL.createObjectURL(blob));
});
form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = question.value.trim();
  if (!text || answering) return;
  question.value = '';
  void ask(text);
});
// Enter asks, Shift+Enter starts a new line.
question.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});
stop.addEventListener('click', () => answering?.abort());
$<HTMLButtonElement>('clear').addEventListener('click', () => {
  conversation = [];
  sessionStorage.removeItem(STORAGE_KEY);
  showConversation();
});

showConversation();
void showModel();
void listUploads();

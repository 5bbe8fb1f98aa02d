// Photos and videos of a case's reports and its tasks' results. GET
// /v1/media/{id} needs the bearer header, so an <img src> cannot name it:
// each file is fetched with the token into a blob: URL (the CSP allows
// img-src blob: and media-src blob:). The URLs are kept per case, reused
// across re-renders and revoked when the detail shows another case.
import { bearer, renewToken, type Schemas } from './api/client';
import { h } from './dom';
import { t } from './i18n';

export type MediaRef = Schemas['MediaRef'];

export class MediaCache {
  private urls = new Map<string, Promise<string>>();

  /** The blob: URL of a medium (fetched once). */
  get(ref: MediaRef): Promise<string> {
    let p = this.urls.get(ref.id);
    if (!p) {
      p = (async () => {
        const get = () => {
          const tok = bearer();
          return fetch(ref.url, { headers: tok ? { Authorization: `Bearer ${tok}` } : {}, credentials: 'same-origin' });
        };
        let r = await get();
        if (r.status === 401 && (await renewToken())) r = await get();
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return URL.createObjectURL(await r.blob());
      })();
      this.urls.set(ref.id, p);
      p.catch(() => this.urls.delete(ref.id)); // try again on the next render
    }
    return p;
  }

  /** Drops (and revokes) every URL: the detail shows another case. */
  revokeAll(): void {
    for (const p of this.urls.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
    this.urls.clear();
  }

  get size(): number {
    return this.urls.size;
  }
}

function isVideo(ref: MediaRef): boolean {
  return (ref.content_type ?? '').startsWith('video/');
}

/** Thumbnails (photos), play buttons (videos) and "not uploaded yet" notes. */
export function mediaList(refs: MediaRef[] | null | undefined, cache: MediaCache, what: string): HTMLElement | null {
  if (!refs || refs.length === 0) return null;
  return h(
    'ul',
    { class: 'media', 'aria-label': `${what} · ${t('media')}` },
    refs.map((ref, i) => {
      const n = `${what} ${t(isVideo(ref) ? 'video' : 'photo')} ${i + 1}`;
      if (!ref.available) return h('li', { class: 'media-missing', 'data-media': ref.id }, `${n}: ${t('notUploaded')}`);
      if (isVideo(ref)) {
        const li = h('li', { class: 'media-video', 'data-media': ref.id });
        const play = h(
          'button',
          {
            type: 'button',
            class: 'secondary small',
            on: {
              click: () => {
                play.disabled = true;
                cache
                  .get(ref)
                  .then((url) => {
                    const v = h('video', { controls: true, preload: 'metadata', 'aria-label': n });
                    v.src = url;
                    li.replaceChildren(v);
                    v.focus();
                  })
                  .catch(() => {
                    play.disabled = false;
                    li.append(h('span', { class: 'error' }, ` ${t('mediaFailed')}`));
                  });
              },
            },
          },
          `▶ ${t('playVideo')} (${n})`,
        );
        li.append(play);
        return li;
      }
      const img = h('img', { class: 'thumb', alt: n, 'data-media': ref.id });
      const li = h('li', { class: 'media-photo' }, img);
      cache
        .get(ref)
        .then((url) => {
          img.src = url;
        })
        .catch(() => li.append(h('span', { class: 'error' }, `${n}: ${t('mediaFailed')}`)));
      return li;
    }),
  );
}

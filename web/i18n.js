// The page's languages: English and Simplified Chinese. Each language is one message table
// (messages-en.js, messages-zh.js) with the same keys. The language comes from the user's
// choice (localStorage), else from navigator.languages, else English.

import en from './messages-en.js';
import zh from './messages-zh.js';

/** Message tables by language code; `htmlLang` is what <html lang> says for it (BCP 47). */
export const LANGUAGES = {
  en: { table: en, htmlLang: 'en' },
  zh: { table: zh, htmlLang: 'zh-CN' },
};

const STORAGE_KEY = 'meshnode.lang';
let current = 'en';

/** The first of the user's preferred languages the page has (`zh-TW` → `zh`), else `en`. */
export function pickLanguage(preferred = globalThis.navigator?.languages ?? []) {
  for (const tag of preferred) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES[base]) return base;
  }
  return 'en';
}

/** The language to start in: the remembered choice, or the browser's. */
export function initialLanguage() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage can be blocked; the browser's language then decides.
  }
  return LANGUAGES[stored] ? stored : pickLanguage();
}

export function currentLanguage() {
  return current;
}

/** Switches to `lang`, remembers it when `remember`, and retranslates the static page. */
export function setLanguage(lang, remember = true) {
  if (!LANGUAGES[lang]) return;
  current = lang;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, lang);
    } catch {
      // Not remembered; the page still switches.
    }
  }
  document.documentElement.lang = LANGUAGES[lang].htmlLang;
  translatePage();
}

/**
 * The text for `key` in the current language with `{name}` replaced from `params`. A key
 * missing from a table falls back to English, then to the key itself, so a gap shows up
 * as a visible key rather than an empty place.
 */
export function t(key, params = {}) {
  const text = LANGUAGES[current].table[key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** A clock time (hours and minutes, seconds) in the current language's way. */
export function formatTime(date) {
  return date.toLocaleTimeString(LANGUAGES[current].htmlLang);
}

/**
 * Fills the static page: `data-i18n` sets the text, `data-i18n-placeholder`,
 * `data-i18n-aria-label` and `data-i18n-title` set those attributes.
 */
export function translatePage(root = document) {
  for (const element of root.querySelectorAll('[data-i18n]')) element.textContent = t(element.dataset.i18n);
  for (const [data, attribute] of [['i18nPlaceholder', 'placeholder'], ['i18nAriaLabel', 'aria-label'], ['i18nTitle', 'title']]) {
    const selector = `[data-${data.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}]`;
    for (const element of root.querySelectorAll(selector)) element.setAttribute(attribute, t(element.dataset[data]));
  }
}

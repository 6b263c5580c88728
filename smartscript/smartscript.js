/*! Gangway Smart Script: first-party stand-in for AppsFlyer's AF_SMART_SCRIPT */
// The contract is spec/smartscript.md. app/mapping.py is the server-side twin and both pass the
// same vectors, so a change here needs the same change there.
//
// Served minified by rjsmin, which strips whitespace and comments but renames nothing, so names
// are short to stay under the 3 KB gzip budget. Conventions: a = call arguments, c = one field
// configuration {keys, overrideValues, defaultValue}, m = the argument path an error names,
// p = parameters as a Map (a Map, so a query key like "__proto__" stays plain data), k/v = key and
// value. Every public member runs inside `safe`: bad input logs one console.error and gives null.
(() => {
  const W = window, D = document, L = location, N = navigator, E = encodeURIComponent,
    V = 'gw-1.0.0',
    TTL = 72e5, // stored landing parameters and referrer live two hours
    SUBS = [1, 2, 3, 4, 5].map(n => 'af_sub' + n),
    // afParameters fields and the outgoing key each fills, in the order they are written.
    FIELDS = [['mediaSource', 'pid'], ['campaign', 'c'], ['channel', 'af_channel'], ['ad', 'af_ad'],
      ['adSet', 'af_adset'], ['deepLinkValue', 'deep_link_value'], ...SUBS.map((k, i) => ['afSub' + (i + 1), k])],
    NAMED = FIELDS.map(f => f[1]),
    IDS = ['ttclid', 'gclid', 'fbclid', 'gbraid', 'wbraid', 'twclid', 'ScCid'], // auto-forwarded
    PLAT = 'ios android steam epic nativepc playstation xbox switch quest battlenet roku tizen webos smartcast vidaa'.split(' '),
    TT = { // the TikTok preset (section 4 of the contract)
      mediaSource: {keys: ['pid', 'utm_source'], defaultValue: 'tiktokweb_int'},
      campaign: {keys: ['c', 'utm_campaign']},
      afCustom: ['af_c_id', 'af_adset_id', 'af_ad_id', 'af_siteid', 'ttclid'].map(k => ({paramKey: k, keys: [k]}))
    },
    me = D.currentScript,
    HOST = me ? new URL(me.src, L.href).origin : L.origin,
    fail = m => { throw Error('invalid ' + m) },
    str = s => typeof s == 'string',
    obj = o => !!o && typeof o == 'object' && !Array.isArray(o),
    strs = s => s == null || Array.isArray(s) && s.every(str),
    lc = s => s.toLowerCase(),
    safe = f => (...a) => {
      try { return f(...a) } catch (e) { console.error('Gangway:', e); return null }
    },
    load = k => { try { return JSON.parse(localStorage.getItem(k)) } catch (e) {} },
    put = (k, v) => { try { localStorage.setItem(k, JSON.stringify(v)) } catch (e) {} },
    live = e => e && e.t > Date.now() - TTL,
    // Parameters of a query: the first non-empty value of each key.
    parse = q => {
      const p = new Map();
      for (const [k, v] of new URLSearchParams(q)) v && !p.has(k) && p.set(k, v);
      return p;
    },
    opt = (s, m) => s == null || str(s) || fail(m),
    cur = parse(L.search);
  // The TikTok preset's adSet, ad and channel read the incoming key of the same name.
  FIELDS.slice(2, 5).forEach(([f, k]) => { TT[f] = {keys: [k]} });

  // Older pages' queries, newest first, kept as the raw query string: whatever sits in storage
  // goes through the same parser as the address bar, so tampered entries cannot break a call.
  let old = load('gw_incoming'), ref = load('gw_referrer'), last = null;
  old = (Array.isArray(old) ? old : []).filter(live).slice(0, 9);
  put('gw_incoming', cur.size ? [{t: Date.now(), q: L.search}, ...old] : old);
  try {
    if (D.referrer && new URL(D.referrer).origin != L.origin) put('gw_referrer', ref = {t: Date.now(), r: D.referrer});
  } catch (e) {}

  const conf = (c, m) => obj(c) && strs(c.keys) && opt(c.defaultValue, m) &&
      (c.overrideValues == null || obj(c.overrideValues) && Object.values(c.overrideValues).every(str)) ? c : fail(m),
    pick = (c, p) => {
      const o = c.overrideValues;
      let v;
      for (const k of c.keys || []) if ((v = p.get(k))) break;
      return (v ? o && {}.hasOwnProperty.call(o, v) ? o[v] : v : c.defaultValue) || '';
    },
    // The mapping rules shared with app/mapping.py: the outgoing parameters, or null.
    // dc: build a direct click URL (af_media_source, af_campaign, ... af_r) instead.
    mapping = (a, dc) => {
      const ap = a.afParameters == null ? TT : a.afParameters, g = ap.googleClickIdKey,
        sub = a.ttclidSub == null ? 'af_sub1' : a.ttclidSub;
      obj(ap) || fail('afParameters');
      strs(a.referrerSkipList) || fail('referrerSkipList');
      strs(a.urlSkipList) || fail('urlSkipList');
      opt(a.webReferrer, 'webReferrer');
      opt(g, 'googleClickIdKey');
      SUBS.includes(sub) || fail('ttclidSub');
      const fs = FIELDS.map(([f, k]) => [k, ap[f] == null ? 0 : conf(ap[f], f)]),
        cu = ap.afCustom == null ? [] : Array.isArray(ap.afCustom) ? ap.afCustom : fail('afCustom');
      fs[0][1] || fail('mediaSource');
      cu.forEach((c, i) => { conf(c, 'afCustom').paramKey && str(c.paramKey) || fail('afCustom[' + i + '].paramKey') });

      const skip = (l, s) => (l || []).some(x => x && lc(s).includes(lc(x)));
      if (skip(a.referrerSkipList, D.referrer) || skip(a.urlSkipList, D.URL)) return null;

      // Values come from the newest entry holding a key the mapping reads (a click ID counts, so
      // a lone ttclid is not lost), taken whole: entries are never merged.
      const cs = fs.map(f => f[1]).concat(cu),
        want = k => cs.some(c => c && (c.keys || []).includes(k)) ||
          g && (k == 'gclid' || k == 'keyword') || IDS.some(i => lc(i) == lc(k)),
        p = [cur, ...old.filter(live).map(e => parse(e.q + ''))].find(p => [...p.keys()].some(want)) || cur,
        out = new Map(),
        add = (k, v) => v && !out.has(k) && out.set(k, v);
      fs.forEach(([k, c]) => c && add(k, pick(c, p)));
      if (!out.has('pid')) return null;
      if (g && !NAMED.slice(0, 6).includes(g)) add(g, p.get('gclid')), add('af_keywords', p.get('keyword'));
      cu.forEach(c => NAMED.includes(c.paramKey) || add(c.paramKey, pick(c, p)));
      if (!dc && a.webReferrer && live(ref)) add(a.webReferrer, ref.r + '');
      // Click IDs: this page first, then the chosen entry; any letter case in, canonical out.
      IDS.forEach(i => {
        for (const q of [cur, p]) for (const [k, v] of q) if (lc(k) == lc(i)) return add(i, v);
      });
      // The snippet's own keys come first and win; pvid and af_r are written last and win too.
      const tt = out.get('ttclid'), c = out.get('c'), q = new Map([['af_js_web', 'true'], ['af_ss_ver', V]]),
        pv = D.querySelector('meta[name=gw-pvid]'),
        own = (k, v) => { q.delete(k); q.set(k, v) };
      // The ttclid rule: copy it to an af_subN so that raw data shows it.
      if (tt && !SUBS.some(k => out.get(k) == tt)) {
        let i = SUBS.indexOf(sub), n = 5;
        while (n-- && out.has(SUBS[i])) i = (i + 1) % 5;
        n < 0 ? console.warn('Gangway: no af_sub free for ttclid') : add(SUBS[i], tt);
      }
      if (dc) {
        if (!c) return null;
        q.set('af_media_source', out.get('pid')).set('af_campaign', c).set('af_campaign_id', out.get('af_c_id') || c);
        ['pid', 'c', 'af_c_id'].forEach(k => out.delete(k));
      }
      out.forEach((v, k) => q.has(k) || q.set(k, v));
      if (pv && pv.content) own('pvid', pv.content);
      if (dc) own('af_r', a.redirectURL);
      return q;
    },
    enc = q => [...q].map(([k, v]) => E(k) + '=' + E(v)).join('&'),
    fired = new Set(),
    need = () => last || fail('call: generateOneLinkURL first'),
    // The QR image, unless /qr.svg would refuse the link (over 2,048 bytes of UTF-8, which is
    // what unescape(E(...)).length counts, MAX_QR_URL in app/web/pages.py): then the element
    // keeps what it holds, the server's QR code on a hosted page. Answers whether it put one in.
    qr = el => {
      const u = E(last.url + '&af_ss_qr=true'), img = D.createElement('img');
      if (unescape(u).length > 2048) return false;
      img.src = new URL(last.base).origin + '/qr.svg?u=' + u;
      img.alt = 'QR code: scan to get the app';
      el.textContent = '';
      el.appendChild(img);
      return true;
    },
    // The click link from a checked base: its last URL is what the other members use.
    link = (a, base) => {
      const q = mapping(a), url = q && base + '?' + enc(q);
      if (q) last = {url, q, base};
      return q && {clickURL: url};
    },
    api = W.AF_SMART_SCRIPT = W.Gangway = {
      version: V,
      generateOneLinkURL: safe(a => {
        // https with a path; plain http only on this machine.
        const u = obj(a) && str(a.oneLinkURL) &&
          a.oneLinkURL.match(/^(https:\/\/[^/?#\\@\s]+|http:\/\/(localhost|127\.0\.0\.1)(:\d+)?)\/[^?#\s]+$/i);
        return u ? link(a, a.oneLinkURL) : fail('oneLinkURL');
      }),
      generateDirectClickURL: safe(a => {
        const p = obj(a) && str(a.platform) && lc(a.platform);
        PLAT.includes(p) || fail('platform');
        [a.app_id, a.redirectURL].every(s => s && str(s)) || fail('app_id or redirectURL');
        const q = mapping(a, 1);
        return q && HOST + '/v1.0/c2s/click/app/' + p + '/' + E(a.app_id) + '?' + enc(q);
      }),
      fireImpressionsLink: safe(() => {
        const i = need().base.replace(/\/c\/([^/]+)\/?$/, '/i/$1'), params = {};
        i != last.base || fail('oneLinkURL');
        if (fired.has(last.url)) return false;
        fired.add(last.url);
        last.q.forEach((v, k) => { params[k] = v });
        const body = JSON.stringify({url: D.URL, referrer: D.referrer, pvid: params.pvid, params});
        // text/plain keeps it a simple request: no CORS preflight on the way out of the page.
        if (!(N.sendBeacon && N.sendBeacon(i, body))) {
          if (W.fetch) fetch(i, {method: 'POST', body, keepalive: true, mode: 'no-cors'}).catch(() => {});
          else new Image().src = i + '?' + enc(last.q);
        }
        return true;
      }),
      displayQrCode: safe(id => {
        const el = str(id) && D.getElementById(id);
        el || fail('elementId');
        need();
        return qr(el);
      })
    };

  if (me && me.hasAttribute('data-auto')) {
    const run = safe(() => {
      const ds = me.dataset;
      // The link base is the script's own origin: trusted as it is, plain-http LAN hosts too
      // (the https rule is for links typed into a page).
      if (!link({afParameters: ds.mapping ? JSON.parse(ds.mapping) : null, ttclidSub: ds.ttclidSub},
        HOST + '/c/' + E(ds.app || fail('data-app')))) return;
      // The CTA rule (mapping.cta_url): the button's platform rides along as platform=.
      D.querySelectorAll('a[data-gw-cta]').forEach(a => {
        const p = a.dataset.platform;
        a.href = last.url + (p ? '&platform=' + E(p) : '');
      });
      api.fireImpressionsLink();
      // Desktop visitors get a QR code to carry the click to their phone.
      if (matchMedia('(pointer:fine)').matches) D.querySelectorAll('[data-gw-qr]').forEach(qr);
    });
    D.readyState == 'loading' ? D.addEventListener('DOMContentLoaded', run) : run();
  }
})();

/*! Gangway smart banner, an optional add-on to smartscript.js */
// Load it with its own tag after the snippet, so pages without a banner never download it:
//   <script src="https://<host>/smartscript.js"></script>
//   <script src="https://<host>/banner.js" defer></script>
// Gangway.showBanner({appKey, title, subtitle, cta, position, containerQuery, days, label,
// afParameters, ttclidSub}) shows one dismissible "get the app" banner whose button is the click
// link for the visitor's platform and answers true when it is showing; Gangway.hideBanner()
// takes it away. The snippet (window.Gangway) builds the link and fires the impression.
//
// The banner never covers the page on load. At the top it goes into the page flow as the body's
// (or the container's) first child and pushes content down. At the bottom it is fixed to the
// viewport and the body gets that much more bottom padding, so the end of the page can always be
// scrolled clear; inside a container it is the container's last child, in flow.
//
// Styles are set through CSSOM (element.style), which a Content-Security-Policy without
// 'unsafe-inline' still allows, unlike an injected <style>.
(() => {
  const W = window, D = document, G = W.Gangway;
  if (!G || !G.generateOneLinkURL) return console.error('Gangway: load smartscript.js before banner.js');
  const me = D.currentScript,
    HOST = me ? new URL(me.src, location.href).origin : location.origin,
    UA = navigator.userAgent,
    // iPadOS asks for desktop pages and says Macintosh; a touch screen gives it away.
    PLATFORM = /iPhone|iPad|iPod/.test(UA) || navigator.maxTouchPoints > 1 && /Macintosh/.test(UA) ? 'ios'
      : /Android/.test(UA) ? 'android' : '',
    DAY = 864e5,
    memo = {}, // dismissals when localStorage is blocked: this page view only
    fail = m => { throw Error('invalid ' + m) },
    safe = f => (...a) => {
      try { return f(...a) } catch (e) { console.error('Gangway:', e); return null }
    },
    storeKey = app => 'gw_banner_' + app,
    dismissedUntil = app => {
      let t = memo[app] || 0;
      try { t = Math.max(t, +localStorage.getItem(storeKey(app)) || 0) } catch (e) {}
      return t;
    },
    make = (tag, style, text) => {
      const el = D.createElement(tag);
      Object.assign(el.style, style);
      if (text) el.textContent = text;
      return el;
    },
    ellipsis = {whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis'};
  let shown = null; // {el, pad: the body's own padding-bottom to restore}

  const hide = () => {
    if (!shown) return false;
    shown.el.remove();
    if (shown.pad != null) D.body.style.paddingBottom = shown.pad;
    shown = null;
    return true;
  };

  const show = o => {
    o = o || {};
    const app = o.appKey, days = o.days == null ? 7 : o.days, bottom = o.position == 'bottom';
    typeof app == 'string' && /^[a-z0-9-]{1,40}$/.test(app) || fail('appKey');
    typeof days == 'number' && days >= 0 || fail('days');
    o.position == null || bottom || o.position == 'top' || fail('position');
    const box = o.containerQuery ? D.querySelector(o.containerQuery) : D.body;
    box || fail('containerQuery');
    if (shown) return true;
    if (dismissedUntil(app) > Date.now()) return false;
    const r = G.generateOneLinkURL({oneLinkURL: HOST + '/c/' + app, afParameters: o.afParameters,
      ttclidSub: o.ttclidSub});
    if (!r) return false;

    const el = make('div', {
      display: 'flex', alignItems: 'center', gap: '8px', boxSizing: 'border-box',
      padding: '8px 12px 8px 4px', background: '#fff', color: '#1a1a1a', textAlign: 'left',
      font: '14px/1.3 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif',
      boxShadow: '0 0 0 1px rgba(0,0,0,.12),0 2px 8px rgba(0,0,0,.12)'
    });
    el.id = 'gw-banner';
    el.setAttribute('role', 'region');
    el.setAttribute('aria-label', String(o.label || 'Get the app'));
    const close = make('button', {
      flex: 'none', width: '44px', height: '44px', padding: '0', border: '0', borderRadius: '50%',
      background: 'transparent', color: '#333', font: '28px/1 sans-serif', cursor: 'pointer'
    }, '\u00d7');
    close.type = 'button';
    close.setAttribute('aria-label', 'Close');
    const text = make('div', {flex: '1', minWidth: '0'});
    text.appendChild(make('div', Object.assign({fontWeight: '600', fontSize: '15px'}, ellipsis),
      String(o.title || D.title)));
    if (o.subtitle) text.appendChild(make('div', Object.assign({color: '#555', fontSize: '13px'}, ellipsis), String(o.subtitle)));
    const cta = make('a', {
      flex: 'none', padding: '11px 18px', borderRadius: '999px', background: '#1a1a1a', color: '#fff',
      fontWeight: '600', textDecoration: 'none', whiteSpace: 'nowrap'
    }, String(o.cta || 'Get the app'));
    // The CTA rule of the snippet: the visitor's platform rides along as platform=.
    cta.href = r.clickURL + (PLATFORM ? '&platform=' + PLATFORM : '');
    el.append(close, text, cta);

    const dismiss = () => {
      const until = Date.now() + days * DAY;
      memo[app] = until;
      try { localStorage.setItem(storeKey(app), String(until)) } catch (e) {}
      hide();
    };
    close.addEventListener('click', dismiss);
    el.addEventListener('keydown', e => { if (e.key == 'Escape' || e.key == 'Esc') dismiss() });

    let pad = null;
    if (bottom && !o.containerQuery) {
      Object.assign(el.style, {position: 'fixed', left: '0', right: '0', bottom: '0', zIndex: '2147483000'});
      box.appendChild(el);
      pad = D.body.style.paddingBottom;
      D.body.style.paddingBottom = parseFloat(getComputedStyle(D.body).paddingBottom) + el.offsetHeight + 'px';
    } else if (bottom) {
      box.appendChild(el);
    } else {
      if (box == D.body) {
        // Edge to edge across the body's margins, keeping the gap above the page's content.
        const cs = getComputedStyle(box);
        el.style.margin = '-' + cs.marginTop + ' -' + cs.marginRight + ' ' + cs.marginTop + ' -' + cs.marginLeft;
      }
      box.insertBefore(el, box.firstChild);
    }
    shown = {el, pad};
    G.fireImpressionsLink();
    return true;
  };

  G.showBanner = safe(show);
  G.hideBanner = safe(hide);
})();

// A tiny XML well-formedness checker for tests: tags nest and close, attributes are quoted and
// unique, entities are known, one root element. Returns the elements (name + attributes) in
// document order so tests can query them without a DOM.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  /** text directly inside the element (entities decoded) */
  text: string;
  parent: XmlElement | null;
}

const ENTITY = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

function decode(s: string, where: string): string {
  const bad = s.replace(ENTITY, '').match(/&/);
  if (bad) throw new Error(`bare '&' or unknown entity in ${where}: ${s.slice(0, 60)}`);
  if (s.includes('<')) throw new Error(`'<' in ${where}`);
  return s.replace(ENTITY, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[e] ?? String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)));
}

export function parseXml(src: string): XmlElement[] {
  const all: XmlElement[] = [];
  const stack: XmlElement[] = [];
  let i = 0;
  let roots = 0;
  const NAME = /^[A-Za-z_][\w.:-]*/;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = src.slice(i, lt === -1 ? src.length : lt);
    if (text.trim()) {
      if (!stack.length) throw new Error(`text outside the root element at ${i}`);
      stack[stack.length - 1].text += decode(text, 'text');
    }
    if (lt === -1) break;
    if (src.startsWith('<?', lt)) {
      i = src.indexOf('?>', lt) + 2;
      continue;
    }
    if (src.startsWith('<!--', lt)) {
      i = src.indexOf('-->', lt) + 3;
      continue;
    }
    const gt = src.indexOf('>', lt);
    if (gt === -1) throw new Error(`unterminated tag at ${lt}`);
    let body = src.slice(lt + 1, gt);
    if (body.startsWith('/')) {
      const name = body.slice(1).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}> at ${lt}`);
      i = gt + 1;
      continue;
    }
    const selfClosing = body.endsWith('/');
    if (selfClosing) body = body.slice(0, -1);
    const nm = body.match(NAME);
    if (!nm) throw new Error(`bad tag name at ${lt}: ${body.slice(0, 30)}`);
    const el: XmlElement = { name: nm[0], attrs: {}, text: '', parent: stack[stack.length - 1] ?? null };
    let rest = body.slice(nm[0].length);
    while (rest.trim()) {
      const a = rest.match(/^\s+([A-Za-z_:][\w.:-]*)="([^"]*)"/);
      if (!a) throw new Error(`bad attribute syntax in <${el.name}> at ${lt}: ${rest.slice(0, 40)}`);
      if (a[1] in el.attrs) throw new Error(`duplicate attribute ${a[1]} in <${el.name}>`);
      el.attrs[a[1]] = decode(a[2], `attribute ${a[1]}`);
      rest = rest.slice(a[0].length);
    }
    if (!stack.length && roots++ > 0) throw new Error('more than one root element');
    all.push(el);
    if (!selfClosing) stack.push(el);
    i = gt + 1;
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (!roots) throw new Error('no root element');
  return all;
}

export function hasClass(el: XmlElement, cls: string): boolean {
  return (el.attrs.class ?? '').split(/\s+/).includes(cls);
}

// A node:test reporter that writes one line per skipped test ("file: name — reason") to its destination, so that
// `npm test` can fail under CI when an integration test skipped because a real part it needs was missing.
export default async function* skippedTests(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, name, file } = event.data;
    if (skip === undefined || skip === false) continue;
    yield `${file ?? '?'}: ${name} — ${typeof skip === 'string' ? skip : 'skipped'}\n`;
  }
}

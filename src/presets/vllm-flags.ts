/**
 * @module presets/vllm-flags
 * Reading vLLM's flags from a container's command line as the presets write it — the arguments, or a `bash -c`
 * script whose `"$@"` takes them — for the programs that stand in for vLLM (`llmisvc up`, `dev cluster
 * --run-pods`). Words are split as a shell would split them (quotes, escapes, line continuations), but nothing is
 * expanded and nothing is ever run: a word holding `$` is shell text whose value is not known here.
 */

/** The script of a `sh -c SCRIPT` form is the item after `-c`; every other item is one argument already. */
function isScript(items: readonly string[], index: number): boolean {
  return index > 0 && items[index - 1] === '-c';
}

/**
 * A shell script's words: split at unquoted white space, with `'…'` and `"…"` quoting, backslash escapes and
 * line continuations; `;`, `&&` and the like stay inside words (flags are all that is read).
 * @example shellWords(`exec vllm serve /m \\\n  --served-model-name "my model"`) // → ['exec', 'vllm', 'serve', '/m', '--served-model-name', 'my model']
 */
export function shellWords(script: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (c === "'") {
      const end = script.indexOf("'", i + 1);
      word += script.slice(i + 1, end < 0 ? script.length : end);
      i = end < 0 ? script.length : end;
      inWord = true;
    } else if (c === '"') {
      for (i++; i < script.length && script[i] !== '"'; i++) {
        // Inside double quotes a backslash escapes only these.
        if (script[i] === '\\' && '"\\$`\n'.includes(script[i + 1] ?? '')) i++;
        if (script[i] !== '\n' || script[i - 1] !== '\\') word += script[i];
      }
      inWord = true;
    } else if (c === '\\') {
      // A line continuation joins lines; any other escaped character is itself.
      if (script[i + 1] !== '\n' && i + 1 < script.length) {
        word += script[i + 1];
        inWord = true;
      }
      i++;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A container's command line as words: its command and arguments, a `-c` script split as the shell would. */
export function commandWords(container: { command?: readonly string[]; args?: readonly string[] }): string[] {
  const items = [...(container.command ?? []), ...(container.args ?? [])].map(String);
  return items.flatMap((item, i) => (isScript(items, i) ? shellWords(item) : [item]));
}

/**
 * The values of a flag's last occurrence, as vLLM's argument parser keeps them: `--name a b`, `--name=a`; the
 * values end at the next flag, and a word holding `$` (unexpanded shell text) is not one. Undefined when the flag
 * is absent.
 * @example lastFlagValues(['--served-model-name', 'a', 'b', '--port', '1', '--served-model-name=c'], '--served-model-name') // → ['c']
 */
export function lastFlagValues(words: readonly string[], flag: string): string[] | undefined {
  let values: string[] | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.startsWith(`${flag}=`)) values = [word.slice(flag.length + 1)];
    else if (word === flag) {
      values = [];
      for (let j = i + 1; j < words.length && !words[j]!.startsWith('-'); j++) {
        if (!words[j]!.includes('$')) values.push(words[j]!);
      }
    }
  }
  return values;
}

/** The model path or name after `vllm serve`, if the command line has one. */
export function servedModelPath(words: readonly string[]): string | undefined {
  const serve = words.findIndex((w, i) => w === 'serve' && /(^|\/)vllm$/.test(words[i - 1] ?? ''));
  const next = serve >= 0 ? words[serve + 1] : undefined;
  return next !== undefined && !next.startsWith('-') ? next : undefined;
}

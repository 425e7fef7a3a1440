/**
 * @module presets/vllm-flags
 * Reading vLLM's flags from a container's command line as the presets write it — the arguments, or a `sh -c`
 * script whose `"$@"` takes them — for the programs that stand in for vLLM (`llmisvc up`, `dev cluster
 * --run-pods`). A script is split as a POSIX shell would split it (quotes, escapes, line continuations, comments,
 * command separators, redirections), but nothing is expanded and nothing is ever run: a word holding an expansion
 * (`$VAR`, `$(…)`, `` `…` ``) has a value not known here, and keeps its `$` or backquote so that it is never taken
 * for a flag's value.
 */

/** A shell the way containers name it (`/bin/bash`, `sh`, …). */
const SHELL = /(^|\/)(ba|da|k|z)?sh$/;
/** `-c`, alone or among other one-letter options (`-ec`, `-lc`). */
const SCRIPT_OPTION = /^-[a-zA-Z]*c[a-zA-Z]*$/;
/** vLLM's OpenAI server module, as `python -m` runs it. */
const VLLM_SERVER_MODULE = 'vllm.entrypoints.openai.api_server';

/** Whether a word is shell text whose value is not known without running the shell. */
function isExpansion(word: string): boolean {
  return word.includes('$') || word.includes('`');
}

/**
 * The end (exclusive) of an expansion that opens at `start` (`$(`, `$((`, `${`, a backquote, `$'`): nested
 * brackets and quotes inside are skipped over; an unclosed one runs to the end.
 */
function expansionEnd(script: string, start: number): number {
  if (script[start] === '`' || script.startsWith("$'", start)) {
    const quote = script[start] === '`' ? '`' : "'";
    let i = start + (quote === '`' ? 1 : 2);
    while (i < script.length && script[i] !== quote) i += script[i] === '\\' ? 2 : 1;
    return Math.min(i + 1, script.length);
  }
  const open = script[start + 1]!;
  const close = open === '(' ? ')' : '}';
  let depth = 0;
  for (let i = start + 1; i < script.length; i++) {
    const c = script[i]!;
    if (c === '\\') i++;
    else if (c === "'" || c === '"') {
      const end = script.indexOf(c, i + 1);
      i = end < 0 ? script.length : end;
    } else if (c === open) depth++;
    else if (c === close && --depth === 0) return i + 1;
  }
  return script.length;
}

/**
 * A shell script's simple commands, each as its words: split at unquoted blanks (space, tab), with `'…'` and `"…"`
 * quoting, backslash escapes, line continuations and comments; commands end at a newline, `;`, `&`, `|`, `(` or `)`;
 * a redirection and its target are left out.
 * @example shellCommands(`exec vllm serve /m \\\n  --served-model-name "a b" 2>&1 | tee log`) // → [['exec', 'vllm', 'serve', '/m', '--served-model-name', 'a b'], ['tee', 'log']]
 */
export function shellCommands(script: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let dropNext = false;
  const endWord = (): void => {
    if (inWord && !dropNext) words.push(word);
    else if (inWord) dropNext = false;
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
    dropNext = false;
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (c === "'") {
      const end = script.indexOf("'", i + 1);
      word += script.slice(i + 1, end < 0 ? script.length : end);
      i = end < 0 ? script.length : end;
      inWord = true;
    } else if (c === '"') {
      for (i++; i < script.length && script[i] !== '"'; i++) {
        const d = script[i]!;
        if (d === '\\' && i + 1 < script.length && '"\\$`\n'.includes(script[i + 1]!)) {
          // An escaped newline is a continuation: it goes; the other escaped characters are themselves.
          if (script[++i] !== '\n') word += script[i];
        } else if ((d === '$' && '({'.includes(script[i + 1] ?? '')) || d === '`') {
          const end = expansionEnd(script, i);
          word += script.slice(i, end);
          i = end - 1;
        } else word += d;
      }
      inWord = true;
    } else if (c === '\\') {
      // A line continuation joins lines; any other escaped character is itself.
      if (i + 1 < script.length && script[i + 1] !== '\n') {
        word += script[i + 1];
        inWord = true;
      }
      i++;
    } else if ((c === '$' && "({'".includes(script[i + 1] ?? '')) || c === '`') {
      const end = expansionEnd(script, i);
      word += script.slice(i, end);
      i = end - 1;
      inWord = true;
    } else if (c === '#' && !inWord) {
      const end = script.indexOf('\n', i);
      i = (end < 0 ? script.length : end) - 1;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if ('\n;&|()'.includes(c)) {
      endCommand();
    } else if (c === '<' || c === '>') {
      // `2>&1`, `> file`: the descriptor number and the target are not the command's words.
      if (/^\d+$/.test(word)) {
        word = '';
        inWord = false;
      }
      endWord();
      while ('<>&|'.includes(script[i + 1] ?? ' ')) i++;
      dropNext = true;
    } else {
      word += c;
      inWord = true;
    }
  }
  endCommand();
  return commands;
}

/** Where `serve` follows `vllm` in a command's words, or -1. */
function vllmServeIndex(words: readonly string[]): number {
  return words.findIndex((w, i) => w === 'serve' && /(^|\/)vllm$/.test(words[i - 1] ?? ''));
}

/** Whether a command runs vLLM's OpenAI server: `vllm serve …` or `python -m vllm.entrypoints.openai.api_server`. */
export function runsVllmServer(words: readonly string[]): boolean {
  return words.includes(VLLM_SERVER_MODULE) || vllmServeIndex(words) >= 0;
}

/**
 * A container's command line as the words of the command that runs: its command and arguments as they are, or for
 * a shell's `-c` script the command in it that runs vLLM (else all of its commands), with `"$@"` replaced by the
 * arguments after the script's `$0`.
 */
export function commandWords(container: { command?: readonly string[]; args?: readonly string[] }): string[] {
  const items = [...(container.command ?? []), ...(container.args ?? [])].map(String);
  const option = SHELL.test(items[0] ?? '') ? items.findIndex((w, i) => i > 0 && SCRIPT_OPTION.test(w)) : -1;
  if (option < 0 || option + 1 >= items.length) return items;
  const commands = shellCommands(items[option + 1]!);
  const command = commands.find(runsVllmServer) ?? commands.flat();
  // The first item after the script is $0, the rest are "$@"; a script that does not use them drops them.
  const positional = items.slice(option + 3);
  return command.flatMap((w) => (w === '$@' || w === '$*' ? positional : [w]));
}

/**
 * The values of a flag's last occurrence, as vLLM's argument parser keeps them: `--name a b`, `--name=a`; the
 * values end at the next flag, and shell text whose value is not known here (`$VAR`, `$(…)`) is not one.
 * Undefined when the flag is absent.
 * @example lastFlagValues(['--served-model-name', 'a', 'b', '--port', '1', '--served-model-name=c'], '--served-model-name') // → ['c']
 */
export function lastFlagValues(words: readonly string[], flag: string): string[] | undefined {
  let values: string[] | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.startsWith(`${flag}=`)) values = isExpansion(word) ? [] : [word.slice(flag.length + 1)];
    else if (word === flag) {
      values = [];
      for (let j = i + 1; j < words.length && !words[j]!.startsWith('-'); j++) {
        if (!isExpansion(words[j]!)) values.push(words[j]!);
      }
    }
  }
  return values;
}

/** The model path or name after `vllm serve`, if the command line has one it can know. */
export function servedModelPath(words: readonly string[]): string | undefined {
  const serve = vllmServeIndex(words);
  const next = serve >= 0 ? words[serve + 1] : undefined;
  return next !== undefined && !next.startsWith('-') && !isExpansion(next) ? next : undefined;
}

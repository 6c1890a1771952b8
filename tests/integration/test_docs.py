#!/usr/bin/env python3
"""Docs drift check: the man pages against the programs' --help.

usage: test_docs.py MAN_DIR PROGRAM...

For each PROGRAM (a path to revd, revc or revbench), MAN_DIR/NAME.1 must
document, in its OPTIONS section, exactly the options that `PROGRAM --help`
lists (long and short), and each default that --help states must appear in
that option's entry.  Every page in MAN_DIR (*.1, *.3) must also render with
`groff -man -Tutf8 -ww -z` without a warning; that check is skipped, saying
so, when groff is not installed (Debian: groff-base).

Python standard library only.  Exit status 0 when everything holds, 1 when
something does not (each problem on a line of its own), 2 for bad usage.
"""

import os
import re
import shutil
import subprocess
import sys

# An option as it is written in --help and, after unescaping, in roff.
LONG_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SHORT_RE = re.compile(r"(?<![\w-])-[a-zA-Z](?![\w-])")
# "(default 7342)", "(default 64m; k, m, g suffixes)", "... (default 10000);"
# but not "(default)", which names the default choice in a list.
DEFAULT_RE = re.compile(r"\(default ([^);,\s]+)")


def options_in(text):
    return set(LONG_RE.findall(text)) | set(SHORT_RE.findall(text))


def parse_help(text):
    """Returns {option: description} from --help output.

    An option line starts (after indentation) with '-'; its option column
    ends at the first run of two spaces.  Continuation lines (indented, not
    starting with '-') extend the description of the options above them.
    """
    entries = {}
    current = []
    for line in text.splitlines():
        stripped = line.strip()
        if not line.startswith(" "):
            current = []  # usage line, prose, blank lines
            continue
        if stripped.startswith("-"):
            column, _, desc = stripped.partition("  ")
            current = sorted(options_in(column))
            for opt in current:
                entries[opt] = desc.strip()
        else:
            for opt in current:
                entries[opt] += " " + stripped
    return entries


def roff_to_text(line):
    """Roff source line -> the words a reader sees (roughly)."""
    line = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", line)  # font changes
    line = re.sub(r"\\\((dq|lq|rq)", '"', line)
    line = re.sub(r"\\\((aq|oq|cq)", "'", line)
    line = line.replace("\\(ha", "^")
    line = line.replace("\\-", "-").replace("\\%", "").replace("\\&", "")
    line = line.replace("\\~", " ").replace("\\e", "\\").replace("\\c", "")
    if line.startswith("."):
        # Macro line: drop the macro name and the argument quotes.
        parts = line.split(None, 1)
        line = parts[1].replace('"', "") if len(parts) > 1 else ""
    return line


def parse_man_options(path):
    """Returns {option: entry text} from the OPTIONS section of a man page.

    An entry is `.TP`, one tag line naming the option(s), and the paragraph
    after it, up to the next `.TP`, `.PP` or `.SH`.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    entries = {}
    in_options = False
    current = None  # options of the entry being read
    expect_tag = False
    for raw in lines:
        if raw.startswith('.\\"'):
            continue
        if raw.startswith(".SH"):
            in_options = raw.split(None, 1)[1:] == ["OPTIONS"]
            current = None
            continue
        if not in_options:
            continue
        if raw.startswith(".TP"):
            expect_tag, current = True, None
            continue
        if raw.startswith((".PP", ".P ", ".LP")) or raw in (".P", ".LP"):
            current = None
            continue
        text = roff_to_text(raw)
        if expect_tag:
            expect_tag = False
            current = sorted(options_in(text))
            for opt in current:
                entries[opt] = ""
            continue
        for opt in current or ():
            entries[opt] += " " + text
    return entries


def check_program(prog, man_dir, problems):
    name = os.path.basename(prog)
    page = os.path.join(man_dir, name + ".1")
    try:
        run = subprocess.run([prog, "--help"], capture_output=True, text=True, timeout=10)
    except OSError as e:
        problems.append(f"{name}: cannot run {prog}: {e}")
        return
    if run.returncode != 0 or not run.stdout:
        problems.append(f"{name}: `{name} --help` exited {run.returncode} with "
                        f"{len(run.stdout)} bytes on stdout")
        return
    if not os.path.exists(page):
        problems.append(f"{name}: no man page {page}")
        return
    helped = parse_help(run.stdout)
    documented = parse_man_options(page)
    if not helped:
        problems.append(f"{name}: found no options in `{name} --help`")
    for opt in sorted(set(helped) - set(documented)):
        problems.append(f"{name}: {opt} is in `{name} --help` but not in the OPTIONS "
                        f"of {os.path.basename(page)}")
    for opt in sorted(set(documented) - set(helped)):
        problems.append(f"{name}: {opt} is in the OPTIONS of {os.path.basename(page)} "
                        f"but not in `{name} --help`")
    for opt, desc in sorted(helped.items()):
        if opt not in documented:
            continue
        for value in DEFAULT_RE.findall(desc):
            if not re.search(r"(?<![\w.])" + re.escape(value) + r"(?![\w])", documented[opt]):
                problems.append(f"{name}: {opt}: `{name} --help` says the default is "
                                f"{value}, {os.path.basename(page)} does not say so")
    print(f"ok {name}: {len(helped)} options in --help and in {os.path.basename(page)}"
          if not any(p.startswith(name + ":") for p in problems) else f"not ok {name}")


def check_rendering(man_dir, problems):
    pages = sorted(os.path.join(man_dir, f) for f in os.listdir(man_dir)
                   if re.search(r"\.[1-8]$", f))
    groff = shutil.which("groff")
    if not groff:
        print("SKIP render check: groff is not installed (Debian: apt-get install "
              "groff-base); the option checks above still ran")
        return
    for page in pages:
        run = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", page],
                             capture_output=True, text=True, timeout=20)
        warnings = run.stderr.strip()
        if run.returncode != 0 or warnings:
            problems.append(f"{os.path.basename(page)}: groff -man -Tutf8 -ww -z exited "
                            f"{run.returncode}: {warnings or '(no message)'}")
        else:
            print(f"ok {os.path.basename(page)} renders without warnings")


def main(argv):
    if len(argv) < 3 or not os.path.isdir(argv[1]):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    man_dir, progs = argv[1], argv[2:]
    problems = []
    for prog in progs:
        check_program(prog, man_dir, problems)
    check_rendering(man_dir, problems)
    for p in problems:
        print("FAIL " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

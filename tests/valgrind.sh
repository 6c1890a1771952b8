#!/bin/sh
# The wrapper of `meson test --setup valgrind`: each C test runs under
# memcheck (any error or leak fails it); a test that is a script runs as is,
# since memcheck would only check the interpreter.
case "$(basename "$1")" in
  python*|*.py|sh|bash) exec "$@" ;;
esac
exec valgrind --quiet --error-exitcode=1 --leak-check=full "$@"

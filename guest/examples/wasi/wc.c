/*
 * A WASI command in C (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32;
 * build: clang --target=wasm32-wasi -O2 -Wl,--strip-all -o wc.wasm wc.c). Counts the lines,
 * words and bytes of stdin like `wc`. With arguments it does more, for nuvola's tests:
 *   cat FILE      also prints the file's first line (or the error opening it)
 *   exit N        exits with code N after printing the counts
 *   flood MIB     writes MIB mebibytes to stdout
 *   env NAME      prints the environment variable NAME
 *   calls         prints how many times this instance has run (always 1 when reset)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int calls;

int main(int argc, char **argv) {
  calls++;
  char buf[65536];
  size_t n, bytes = 0, lines = 0, words = 0;
  int in_word = 0;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
    bytes += n;
    for (size_t i = 0; i < n; i++) {
      char c = buf[i];
      if (c == '\n') lines++;
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
        in_word = 0;
      } else if (!in_word) {
        in_word = 1;
        words++;
      }
    }
  }
  printf("%zu %zu %zu\n", lines, words, bytes);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "cat") == 0 && i + 1 < argc) {
      FILE *f = fopen(argv[++i], "r");
      if (!f) {
        printf("%s: %s\n", argv[i], strerror(errno));
        fprintf(stderr, "cannot open %s\n", argv[i]);
        continue;
      }
      char line[256] = "";
      if (!fgets(line, sizeof line, f)) line[0] = 0;
      fclose(f);
      printf("%s: %s", argv[i], line);
    } else if (strcmp(argv[i], "exit") == 0 && i + 1 < argc) {
      fprintf(stderr, "exiting with %s\n", argv[i + 1]);
      return atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "flood") == 0 && i + 1 < argc) {
      static char block[1 << 20];
      memset(block, 'x', sizeof block);
      for (int m = atoi(argv[++i]); m > 0; m--) fwrite(block, 1, sizeof block, stdout);
    } else if (strcmp(argv[i], "env") == 0 && i + 1 < argc) {
      const char *v = getenv(argv[++i]);
      printf("%s=%s\n", argv[i], v ? v : "(unset)");
    } else if (strcmp(argv[i], "calls") == 0) {
      printf("calls=%d\n", calls);
    } else if (strcmp(argv[i], "write") == 0 && i + 1 < argc) {
      FILE *f = fopen(argv[++i], "w");
      if (!f) {
        printf("%s: %s\n", argv[i], strerror(errno));
        continue;
      }
      fputs("written by wc.wasm\n", f);
      fclose(f);
      printf("%s: written\n", argv[i]);
    }
  }
  return 0;
}

/*
 * A WASI command in C that maps a state key as a region (nuvola:region, guest/sdk/nuvola/abi.ts)
 * and reads or writes it in place: the accessors below are not host calls — nuvola compiles each
 * call of one into a bounds-checked load or store when it registers the module.
 * Build: clang --target=wasm32-wasi -O2 -Wl,--strip-all -o region.wasm region.c
 * stdin: "fill KEY N V" sets N f64s to V and prints the size; "sum KEY N" prints their sum;
 * "get KEY N OFF" prints the f64 at byte OFF (past the end: the call traps, E_GUEST_TRAP).
 */
#include <stdio.h>
#include <string.h>

#define REGION(name) __attribute__((import_module("nuvola:region"), import_name(name)))
REGION("map") int region_map(const char *key, int key_len, int size);
REGION("size") int region_size(int slot);
REGION("get_f64") double region_get_f64(int slot, int off);
REGION("set_f64") void region_set_f64(int slot, int off, double v);

int main(void) {
  char op[16], key[256];
  int n;
  double v = 0;
  if (scanf("%15s %255s %d %lf", op, key, &n, &v) < 3) return 2;
  int slot = region_map(key, (int)strlen(key), n * 8);
  if (strcmp(op, "fill") == 0) {
    for (int i = 0; i < n; i++) region_set_f64(slot, i * 8, v);
    printf("%d\n", region_size(slot));
  } else if (strcmp(op, "sum") == 0) {
    double s = 0;
    for (int i = 0; i < n; i++) s += region_get_f64(slot, i * 8);
    printf("%.1f\n", s);
  } else if (strcmp(op, "get") == 0) {
    printf("%.1f\n", region_get_f64(slot, (int)v));
  } else {
    return 1;
  }
  return 0;
}

;; nuvola's function world (wit/nuvola-function.wit) in a page of WAT: the core module a
;; toolchain such as wit-bindgen would produce, written by hand. Wrap it into a component with
;; jco's bundled wasm-tools (see examples/08-wasi-and-components/main.ts):
;;   parse(wat) → componentEmbed({ binary, witSource, world: 'function' }) → componentNew.
;;
;; `run` echoes its input, with three special inputs for the tests: empty → err("empty input");
;; starting with `!` → a trap; `count` → one byte, how many calls this instance has served
;; (kept in memory, so `1` whenever calls start from the snapshot). Input starting with `#` is
;; also logged through the host's `log`. Memory comes from a bump allocator whose pointer is a
;; global: only a reset of the globals too gives each call the same addresses.
(module
  (import "nuvola:function/host@0.1.0" "log" (func $log (param i32 i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 64) "empty input")
  (func $realloc (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))) (i32.const -1)) (then unreachable))))
    (local.get $p))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (if (i32.eqz (local.get $len))
      (then
        (i32.store8 (i32.const 16) (i32.const 1))
        (i32.store (i32.const 20) (i32.const 64))
        (i32.store (i32.const 24) (i32.const 11))
        (return (i32.const 16))))
    (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 33)) (then unreachable))
    (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 35)) (then (call $log (local.get $ptr) (local.get $len))))
    (i32.store (i32.const 8) (i32.add (i32.load (i32.const 8)) (i32.const 1)))
    (i32.store8 (i32.const 16) (i32.const 0))
    (if (i32.and (i32.eq (local.get $len) (i32.const 5)) (i32.eq (i32.load (local.get $ptr)) (i32.const 0x6e756f63)))
      (then
        (i32.store8 (i32.const 12) (i32.add (i32.const 48) (i32.load (i32.const 8))))
        (i32.store (i32.const 20) (i32.const 12))
        (i32.store (i32.const 24) (i32.const 1))
        (return (i32.const 16))))
    (i32.store (i32.const 20) (local.get $ptr))
    (i32.store (i32.const 24) (local.get $len))
    (i32.const 16))
  (func (export "cabi_post_run") (param i32))
)

;; A small wasi:http 0.2 hello component's core module, written by hand for the peer benchmarks
;; (bench/peers.py). Every request: drop it, answer 200 with {"hello":"world"}.
;; Import and export names use the component model's "cm32p2" name mangling (wasm-tools 1.262);
;; `python -m bench.peers build` wraps it into a component with the wasi:http 0.2.3 WIT.
(module
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields" (func $fields_new (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-response" (func $response_new (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.body" (func $response_body (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]outgoing-body.finish" (func $body_finish (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]response-outparam.set"
    (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "incoming-request_drop" (func $request_drop (param i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.blocking-write-and-flush"
    (func $write_and_flush (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "output-stream_drop" (func $stream_drop (param i32)))

  (memory (export "cm32p2_memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 1024) "{\22hello\22:\22world\22}")

  ;; A bump allocator for what the host hands back (error strings); reset on every request.
  (func (export "cm32p2_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
    (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (local.get $ptr))

  ;; Return areas: 0 (result<own<…>>: tag, handle at 4), 16 (write result), 256 (finish result).
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $outparam i32)
    (local $response i32) (local $body i32) (local $stream i32)
    (global.set $heap (i32.const 4096))
    (call $request_drop (local.get $request))
    (local.set $response (call $response_new (call $fields_new)))
    (call $response_body (local.get $response) (i32.const 0))
    (local.set $body (i32.load (i32.const 4)))
    (call $outparam_set (local.get $outparam) (i32.const 0) (local.get $response)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body_write (local.get $body) (i32.const 0))
    (local.set $stream (i32.load (i32.const 4)))
    (call $write_and_flush (local.get $stream) (i32.const 1024) (i32.const 17) (i32.const 16))
    (call $stream_drop (local.get $stream))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 256)))
)

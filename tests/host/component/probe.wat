;; A lattice:actor/actor@0.1.0 component for the host's tests (SPEC §7), in component text format.
;; guest.handle dispatches on the operation's first byte:
;;   E… echo the payload          F… fail: err(payload as text)     T… trap (unreachable)
;;   L… loop forever              G… grow memory until refused, then trap
;;   C… host.call: payload = [n]binding [n]namespace [n]operation data…; its result is returned as is
;;   H… (HttpServer.HandleRequest) answer 200 "hello from a component"   P… (PingPong.Ping) echo
(component
  (import "lattice:actor/host@0.1.0" (instance $host
    (export "call" (func (param "binding" string) (param "namespace" string) (param "operation" string)
                         (param "payload" (list u8)) (result (result (list u8) (error string)))))))
  (core module $libc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (global.set $bump (i32.add (local.get $p) (local.get $size)))
      (block $ok
        (br_if $ok (i32.le_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
        (br_if $ok (i32.ne (memory.grow (i32.sub (i32.add (i32.shr_u (global.get $bump) (i32.const 16)) (i32.const 1))
                                                 (memory.size)))
                           (i32.const -1)))
        unreachable)
      (if (local.get $old_size)  ;; a reallocation keeps what fits
        (then (memory.copy (local.get $p) (local.get $old)
                (select (local.get $old_size) (local.get $size) (i32.lt_u (local.get $old_size) (local.get $size))))))
      (local.get $p))
    (func (export "reset") (param i32) (global.set $bump (i32.const 1024))))
  (core instance $libc (instantiate $libc))
  (core func $call (canon lower (func $host "call")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $main
    (import "host" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "libc" "memory" (memory 1))
    ;; an HttpResponse (SPEC §2): {statusCode: 200, header: {content-type: [text/plain]}, body: "hello from a component"}
    (data (i32.const 512) "\83\aa\73\74\61\74\75\73\43\6f\64\65\cc\c8\a6\68\65\61\64\65\72\81\ac\63\6f\6e\74\65\6e\74\2d\74\79\70\65\91\aa\74\65\78\74\2f\70\6c\61\69\6e\a4\62\6f\64\79\c4\16\68\65\6c\6c\6f\20\66\72\6f\6d\20\61\20\63\6f\6d\70\6f\6e\65\6e\74")
    (func $ok (param $ptr i32) (param $len i32) (param $tag i32) (result i32)
      (i32.store8 (i32.const 16) (local.get $tag))
      (i32.store (i32.const 20) (local.get $ptr))
      (i32.store (i32.const 24) (local.get $len))
      (i32.const 16))
    (func (export "handle") (param $op i32) (param $oplen i32) (param $p i32) (param $plen i32) (result i32)
      (local $c i32) (local $b i32) (local $bl i32) (local $n i32) (local $nl i32) (local $o i32) (local $ol i32)
      (if (i32.eqz (local.get $oplen)) (then (return (call $ok (local.get $op) (i32.const 0) (i32.const 1)))))
      (local.set $c (i32.load8_u (local.get $op)))
      (if (i32.or (i32.eq (local.get $c) (i32.const 69)) (i32.eq (local.get $c) (i32.const 80)))  ;; E, P
        (then (return (call $ok (local.get $p) (local.get $plen) (i32.const 0)))))
      (if (i32.eq (local.get $c) (i32.const 72))  ;; H
        (then (return (call $ok (i32.const 512) (i32.const 76) (i32.const 0)))))
      (if (i32.eq (local.get $c) (i32.const 70))  ;; F
        (then (return (call $ok (local.get $p) (local.get $plen) (i32.const 1)))))
      (if (i32.eq (local.get $c) (i32.const 84)) (then unreachable))  ;; T
      (if (i32.eq (local.get $c) (i32.const 76)) (then (loop $forever (br $forever))))  ;; L
      (if (i32.eq (local.get $c) (i32.const 71))  ;; G
        (then (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable))
      (if (i32.eq (local.get $c) (i32.const 67))  ;; C
        (then
          (local.set $bl (i32.load8_u (local.get $p)))
          (local.set $b (i32.add (local.get $p) (i32.const 1)))
          (local.set $nl (i32.load8_u (i32.add (local.get $b) (local.get $bl))))
          (local.set $n (i32.add (i32.add (local.get $b) (local.get $bl)) (i32.const 1)))
          (local.set $ol (i32.load8_u (i32.add (local.get $n) (local.get $nl))))
          (local.set $o (i32.add (i32.add (local.get $n) (local.get $nl)) (i32.const 1)))
          (call $call (local.get $b) (local.get $bl) (local.get $n) (local.get $nl) (local.get $o) (local.get $ol)
                      (i32.add (local.get $o) (local.get $ol))
                      (i32.sub (i32.add (local.get $p) (local.get $plen)) (i32.add (local.get $o) (local.get $ol)))
                      (i32.const 16))
          (return (i32.const 16))))
      (call $ok (local.get $op) (local.get $oplen) (i32.const 1))))
  (core instance $main (instantiate $main
    (with "host" (instance (export "call" (func $call))))
    (with "libc" (instance $libc))))
  (func $handle (param "operation" string) (param "payload" (list u8)) (result (result (list u8) (error string)))
    (canon lift (core func $main "handle") (memory (core memory $libc "memory"))
      (realloc (core func $libc "realloc")) (post-return (core func $libc "reset"))))
  (instance $guest (export "handle" (func $handle)))
  (export "lattice:actor/guest@0.1.0" (instance $guest)))

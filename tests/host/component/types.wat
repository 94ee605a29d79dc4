;; Only types: one imported function whose parameters hold every kind of value (test_values.py).
(component
  (import "test:types/all" (instance
    (type $point (record (field "x" u32) (field "label" string)))
    (export "point" (type $p (eq $point)))
    (type $shape (variant (case "none") (case "empty") (case "circle" float64) (case "named" string)))
    (export "shape" (type $s (eq $shape)))
    (type $color (enum "red" "green"))
    (export "color" (type $c (eq $color)))
    (type $perm (flags "read" "write"))
    (export "perm" (type $f (eq $perm)))
    (export "f" (func
      (param "a" $p) (param "b" $s) (param "c" $c) (param "d" $f)
      (param "e" (option (list u8))) (param "g" (tuple s64 char bool))
      (param "h" (list string)) (param "i" (option (option u8)))
      (result (result (option (list u8)) (error $s)))))))
)

package wire

import (
	"reflect"

	"github.com/gohsm/gohsm/hsm"
)

// A binding adapts one function of the shape
//
//	func(hsm.Backend, A1, ..., An) (R1, ..., Rm, error)
//
// (usually a method expression such as hsm.Backend.Sign) to the call
// table's untyped form: arguments and results as []any, each position
// encoded by the wire Type of its Go type. The shapes below are the ones the
// Backend surface has; a new shape is one more function of six lines.
type binding struct {
	fn      any
	args    []reflect.Type
	results []reflect.Type
	invoke  func(be hsm.Backend, a []any) ([]any, error)
}

// as converts an argument back to its Go type; a nil interface (an absent
// parameter) becomes the zero value instead of panicking.
func as[T any](v any) T {
	t, _ := v.(T)
	return t
}

func tt[T any]() reflect.Type { return reflect.TypeFor[T]() }

func b0r0(f func(hsm.Backend) error) binding {
	return binding{fn: f, invoke: func(be hsm.Backend, a []any) ([]any, error) { return nil, f(be) }}
}

func b0r1[R any](f func(hsm.Backend) (R, error)) binding {
	return binding{fn: f, results: []reflect.Type{tt[R]()}, invoke: func(be hsm.Backend, a []any) ([]any, error) {
		r, err := f(be)
		return []any{r}, err
	}}
}

func b1r0[A any](f func(hsm.Backend, A) error) binding {
	return binding{fn: f, args: []reflect.Type{tt[A]()}, invoke: func(be hsm.Backend, a []any) ([]any, error) {
		return nil, f(be, as[A](a[0]))
	}}
}

func b1r1[A, R any](f func(hsm.Backend, A) (R, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A]()}, results: []reflect.Type{tt[R]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, err := f(be, as[A](a[0]))
			return []any{r}, err
		}}
}

func b2r0[A, B any](f func(hsm.Backend, A, B) error) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B]()}, invoke: func(be hsm.Backend, a []any) ([]any, error) {
		return nil, f(be, as[A](a[0]), as[B](a[1]))
	}}
}

func b2r1[A, B, R any](f func(hsm.Backend, A, B) (R, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B]()}, results: []reflect.Type{tt[R]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, err := f(be, as[A](a[0]), as[B](a[1]))
			return []any{r}, err
		}}
}

func b2r2[A, B, R, S any](f func(hsm.Backend, A, B) (R, S, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B]()}, results: []reflect.Type{tt[R](), tt[S]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, s, err := f(be, as[A](a[0]), as[B](a[1]))
			return []any{r, s}, err
		}}
}

func b3r0[A, B, C any](f func(hsm.Backend, A, B, C) error) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			return nil, f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]))
		}}
}

func b3r1[A, B, C, R any](f func(hsm.Backend, A, B, C) (R, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C]()}, results: []reflect.Type{tt[R]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, err := f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]))
			return []any{r}, err
		}}
}

func b3r2[A, B, C, R, S any](f func(hsm.Backend, A, B, C) (R, S, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C]()}, results: []reflect.Type{tt[R](), tt[S]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, s, err := f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]))
			return []any{r, s}, err
		}}
}

func b4r0[A, B, C, D any](f func(hsm.Backend, A, B, C, D) error) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C](), tt[D]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			return nil, f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]), as[D](a[3]))
		}}
}

func b4r1[A, B, C, D, R any](f func(hsm.Backend, A, B, C, D) (R, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C](), tt[D]()}, results: []reflect.Type{tt[R]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, err := f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]), as[D](a[3]))
			return []any{r}, err
		}}
}

func b4r2[A, B, C, D, R, S any](f func(hsm.Backend, A, B, C, D) (R, S, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C](), tt[D]()}, results: []reflect.Type{tt[R](), tt[S]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, s, err := f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]), as[D](a[3]))
			return []any{r, s}, err
		}}
}

func b5r0[A, B, C, D, E any](f func(hsm.Backend, A, B, C, D, E) error) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C](), tt[D](), tt[E]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			return nil, f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]), as[D](a[3]), as[E](a[4]))
		}}
}

func b5r1[A, B, C, D, E, R any](f func(hsm.Backend, A, B, C, D, E) (R, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C](), tt[D](), tt[E]()}, results: []reflect.Type{tt[R]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, err := f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]), as[D](a[3]), as[E](a[4]))
			return []any{r}, err
		}}
}

func b5r2[A, B, C, D, E, R, S any](f func(hsm.Backend, A, B, C, D, E) (R, S, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C](), tt[D](), tt[E]()},
		results: []reflect.Type{tt[R](), tt[S]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, s, err := f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]), as[D](a[3]), as[E](a[4]))
			return []any{r, s}, err
		}}
}

func b5r3[A, B, C, D, E, R, S, T any](f func(hsm.Backend, A, B, C, D, E) (R, S, T, error)) binding {
	return binding{fn: f, args: []reflect.Type{tt[A](), tt[B](), tt[C](), tt[D](), tt[E]()},
		results: []reflect.Type{tt[R](), tt[S](), tt[T]()},
		invoke: func(be hsm.Backend, a []any) ([]any, error) {
			r, s, t, err := f(be, as[A](a[0]), as[B](a[1]), as[C](a[2]), as[D](a[3]), as[E](a[4]))
			return []any{r, s, t}, err
		}}
}

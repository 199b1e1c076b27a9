package runtime

import (
	"reflect"
	"unsafe"
)

// UnionAppender returns the function that appends a value of K to a key,
// for a type parameter whose type set mixes strings, integers and bools
// (K ~string | ~int64): the generated code cannot convert such a K to one
// basic type, so the kind is read once per instantiation, here, and every
// key then appends through the returned function, as AppendString,
// AppendInt, AppendUint or AppendBool would. It panics when K's kind is none
// of those, which the generator rules out.
func UnionAppender[K any]() func(b []byte, k K) []byte {
	switch reflect.TypeFor[K]().Kind() {
	case reflect.String:
		return func(b []byte, k K) []byte { return AppendString(b, *(*string)(unsafe.Pointer(&k))) }
	case reflect.Bool:
		return func(b []byte, k K) []byte { return AppendBool(b, *(*bool)(unsafe.Pointer(&k))) }
	case reflect.Int:
		return func(b []byte, k K) []byte { return AppendInt(b, int64(*(*int)(unsafe.Pointer(&k)))) }
	case reflect.Int8:
		return func(b []byte, k K) []byte { return AppendInt(b, int64(*(*int8)(unsafe.Pointer(&k)))) }
	case reflect.Int16:
		return func(b []byte, k K) []byte { return AppendInt(b, int64(*(*int16)(unsafe.Pointer(&k)))) }
	case reflect.Int32:
		return func(b []byte, k K) []byte { return AppendInt(b, int64(*(*int32)(unsafe.Pointer(&k)))) }
	case reflect.Int64:
		return func(b []byte, k K) []byte { return AppendInt(b, *(*int64)(unsafe.Pointer(&k))) }
	case reflect.Uint:
		return func(b []byte, k K) []byte { return AppendUint(b, uint64(*(*uint)(unsafe.Pointer(&k)))) }
	case reflect.Uint8:
		return func(b []byte, k K) []byte { return AppendUint(b, uint64(*(*uint8)(unsafe.Pointer(&k)))) }
	case reflect.Uint16:
		return func(b []byte, k K) []byte { return AppendUint(b, uint64(*(*uint16)(unsafe.Pointer(&k)))) }
	case reflect.Uint32:
		return func(b []byte, k K) []byte { return AppendUint(b, uint64(*(*uint32)(unsafe.Pointer(&k)))) }
	case reflect.Uint64:
		return func(b []byte, k K) []byte { return AppendUint(b, *(*uint64)(unsafe.Pointer(&k))) }
	case reflect.Uintptr:
		return func(b []byte, k K) []byte { return AppendUint(b, uint64(*(*uintptr)(unsafe.Pointer(&k)))) }
	}
	panic("cachegen: UnionAppender of " + reflect.TypeFor[K]().String() + ", which is no string, integer or bool")
}

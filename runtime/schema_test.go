package runtime

import "testing"

type schemaA struct {
	ID   int64
	Name string `msgpack:"name"`
}

type schemaB struct {
	ID   int64
	Name string `msgpack:"n"` // only the tag differs from schemaA
}

type schemaList struct {
	Next  *schemaList // recursive: must terminate
	Items []schemaA
}

func TestSchemaOf(t *testing.T) {
	seen := map[string]string{}
	for name, h := range map[string]string{
		"A":        SchemaOf[schemaA](),
		"*A":       SchemaOf[*schemaA](),
		"[]A":      SchemaOf[[]schemaA](),
		"B":        SchemaOf[schemaB](),
		"list":     SchemaOf[schemaList](),
		"map":      SchemaOf[map[string]schemaA](),
		"int":      SchemaOf[int](),
		"[3]int64": SchemaOf[[3]int64](),
	} {
		if len(h) != 16 {
			t.Fatalf("%s: hash %q is not 16 hex digits", name, h)
		}
		if other, ok := seen[h]; ok {
			t.Fatalf("%s and %s share schema hash %s", name, other, h)
		}
		seen[h] = name
	}
	if SchemaOf[schemaA]() != SchemaOf[schemaA]() {
		t.Fatal("SchemaOf is not deterministic")
	}
}

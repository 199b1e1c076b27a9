// Package gen is the cachegen generator. Its files are named after its
// stages, run in this order for each package:
//
//   - load.go: drive the stages, compare with the disk; load the packages
//     with our earlier outputs replaced by empty files (load_list.go: one
//     go list for their files, one for their imports' export data, then
//     parse and type-check them from source, never compiling them).
//   - scan.go: find the interfaces of a file and parse their //cache:
//     directives.
//   - build.go, build_*.go: resolve the directives against go/types into
//     the model (model.go) and validate them: placeholders (build_value.go),
//     the type model, the one walk over go/types that the checks of
//     result types read (build_types.go), schema hashes, shapes and the
//     round-trip check (build_schema.go), deep copies (build_clone.go),
//     one key helper per keyspace and form (KeyFunc, build.go).
//   - name.go: choose the names of the generated code.
//   - render.go, render_*.go: write the model as Go source.
package gen

package scenario

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// fuzzFile names the scenario in FuzzParseScenario: every error must carry it.
const fuzzFile = "fuzz/scenario.yaml"

// FuzzParseScenario feeds Parse arbitrary files (the seeds in
// testdata/fuzz/FuzzParseScenario are the shipped scenarios and hostile
// YAML). Parse must never panic; every error must be a *FieldError naming
// the file; an accepted scenario must validate again as it stands, keep
// every number finite, and come back the same when written out as YAML and
// parsed again.
func FuzzParseScenario(f *testing.F) {
	f.Add([]byte("name: x\nusers: [{group: all, count: 2}]\nload: {shape: constant, rate: 10, duration: 5s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(fuzzFile, strings.NewReader(string(data)))
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.File != fuzzFile || !strings.HasPrefix(err.Error(), fuzzFile) {
				t.Fatalf("file %q: error %T %q does not name the file", data, err, err)
			}
			return
		}
		if s.File != fuzzFile {
			t.Fatalf("file %q: File = %q", data, s.File)
		}
		if err := s.validate(); err != nil {
			t.Fatalf("file %q: accepted, yet validate says %v", data, err)
		}
		checkFinite(t, data, "", reflect.ValueOf(s).Elem())
		if s.TotalUsers() < 1 {
			t.Fatalf("file %q: accepted with %d users", data, s.TotalUsers())
		}
		if l := s.Load; l.Shape == ShapeSpike && (l.SpikeAt > l.Duration || l.SpikeDuration > l.Duration-l.SpikeAt) {
			t.Fatalf("file %q: spike from %s for %s ends after %s", data, l.SpikeAt, l.SpikeDuration, l.Duration)
		}

		tree := toYAML(reflect.ValueOf(s).Elem())
		out, err := yaml.Marshal(tree)
		if err != nil {
			t.Fatalf("file %q: marshal %+v: %v", data, s, err)
		}
		again, err := Parse(fuzzFile, strings.NewReader(string(out)))
		if err != nil {
			t.Fatalf("file %q: accepted, but written out as\n%s\nit is refused: %v", data, out, err)
		}
		if got := toYAML(reflect.ValueOf(again).Elem()); !reflect.DeepEqual(got, tree) {
			t.Fatalf("file %q: written out as\n%s\nit reads as %v, want %v", data, out, got, tree)
		}
	})
}

// checkFinite fails the test on a NaN or infinite float and a negative
// duration anywhere in v.
func checkFinite(t *testing.T, data []byte, path string, v reflect.Value) {
	t.Helper()
	switch {
	case v.Type() == durationType:
		if v.Int() < 0 {
			t.Fatalf("file %q: %s is a negative duration %s", data, path, time.Duration(v.Int()))
		}
	case v.Kind() == reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			t.Fatalf("file %q: %s is %v", data, path, f)
		}
	case v.Kind() == reflect.Pointer:
		if !v.IsNil() {
			checkFinite(t, data, path, v.Elem())
		}
	case v.Kind() == reflect.Slice:
		for i := range v.Len() {
			checkFinite(t, data, path+"[]", v.Index(i))
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			checkFinite(t, data, path+"."+v.Type().Field(i).Name, v.Field(i))
		}
	}
}

// toYAML turns a decoded scenario back into what yaml.Marshal writes as the
// same file: fields by their yaml names, durations as text; nil pointers,
// empty lists and maps, and yaml:"-" fields left out (a missing list and an
// empty one mean the same).
func toYAML(v reflect.Value) any {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return toYAML(v.Elem())
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toYAML(v.Index(i))
		}
		return out
	case v.Kind() == reflect.Map:
		if v.Len() == 0 {
			return nil
		}
		out := map[string]any{}
		for it := v.MapRange(); it.Next(); {
			out[it.Key().String()] = toYAML(it.Value())
		}
		return out
	case v.Kind() == reflect.Struct:
		out := map[string]any{}
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if fv := toYAML(v.Field(i)); fv != nil {
				out[name] = fv
			}
		}
		return out
	}
	return v.Interface()
}

package scenario

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FieldError is a problem with one field of a scenario file. Its text names
// the file, the field's path (load.rate, mix[1].ms) and the problem.
type FieldError struct {
	File    string
	Field   string
	Line    int
	Problem string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

var durationType = reflect.TypeFor[time.Duration]()

// decoder fills Go structs from a YAML node tree, strictly: an unknown or
// repeated key, or a value of the wrong kind, is an error that names the
// field. yaml.v3's KnownFields reports the Go type instead of the field
// path, which is no help to someone editing a scenario.
type decoder struct {
	file string
	// lines maps each field path decoded to its line, so that later
	// checks can point at the line too.
	lines map[string]int
	// values counts the values decoded, aliases expanded.
	values int
}

// maxValues bounds the values one file may decode to.
const maxValues = 20_000

func (d *decoder) errorf(path string, n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &FieldError{File: d.file, Field: path, Line: line, Problem: fmt.Sprintf(format, args...)}
}

func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) error {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return d.errorf(path, n, "the file is empty")
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	// Aliases are decoded again at each use, so a small file could expand
	// into millions of values (a "billion laughs"); no scenario has many.
	if d.values++; d.values > maxValues {
		return d.errorf(path, n, "the file expands to more than %d values (through aliases?)", maxValues)
	}
	switch {
	case v.Type() == durationType:
		return d.decodeDuration(path, n, v)
	case v.Kind() == reflect.Pointer:
		if n.Tag == "!!null" {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := d.decode(path, n, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case v.Kind() == reflect.Struct:
		return d.decodeStruct(path, n, v)
	case v.Kind() == reflect.Slice:
		return d.decodeSlice(path, n, v)
	case v.Kind() == reflect.Map:
		return d.decodeMap(path, n, v)
	}
	if n.Kind != yaml.ScalarNode {
		return d.errorf(path, n, "want a %s, got a %s", kindName(v.Kind()), nodeKindName(n))
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!str" {
			return d.errorf(path, n, "want a string, got %s", n.Value)
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || n.Tag == "!!str" {
			return d.errorf(path, n, "want a whole number, got %q", n.Value)
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		// ParseFloat takes nan and inf, which an explicit !!float tag lets
		// through; no field means them, and NaN passes every range check.
		if err != nil || n.Tag == "!!str" || math.IsNaN(f) || math.IsInf(f, 0) {
			return d.errorf(path, n, "want a number, got %q", n.Value)
		}
		v.SetFloat(f)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			return d.errorf(path, n, "want true or false, got %q", n.Value)
		}
		v.SetBool(n.Value == "true")
	default:
		return fmt.Errorf("scenario decoder: unsupported field kind %s at %s", v.Kind(), path)
	}
	return nil
}

func (d *decoder) decodeDuration(path string, n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.ScalarNode {
		return d.errorf(path, n, "want a duration such as 30s or 2m, got a %s", nodeKindName(n))
	}
	if n.Value == "0" {
		v.SetInt(0)
		return nil
	}
	du, err := time.ParseDuration(n.Value)
	if err != nil {
		return d.errorf(path, n, "want a duration such as 30s, 250ms or 2m, got %q", n.Value)
	}
	v.SetInt(int64(du))
	return nil
}

func (d *decoder) decodeStruct(path string, n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(path, n, "want a mapping of fields, got a %s", nodeKindName(n))
	}
	fields := map[string]int{}
	var names []string
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		d.lines[fp] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			return d.errorf(fp, k, "unknown field; the fields here are %s", strings.Join(names, ", "))
		}
		if seen[k.Value] {
			return d.errorf(fp, k, "given twice")
		}
		seen[k.Value] = true
		if err := d.decode(fp, val, v.Field(idx)); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) decodeSlice(path string, n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.SequenceNode {
		return d.errorf(path, n, "want a list, got a %s", nodeKindName(n))
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.lines[fmt.Sprintf("%s[%d]", path, i)] = item.Line
		if err := d.decode(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

// decodeMap fills a map[string]string (env: NAME: value). Any scalar is
// taken as its text, so BACKLOG_LIMIT: 2000 needs no quotes.
func (d *decoder) decodeMap(path string, n *yaml.Node, v reflect.Value) error {
	if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
		return fmt.Errorf("scenario decoder: unsupported map type %s at %s", v.Type(), path)
	}
	if n.Kind != yaml.MappingNode {
		return d.errorf(path, n, "want a mapping of NAME: value, got a %s", nodeKindName(n))
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		d.lines[fp] = k.Line
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			return d.errorf(fp, k, "given twice")
		}
		if val.Kind == yaml.AliasNode {
			val = val.Alias
		}
		if val.Kind != yaml.ScalarNode || val.Tag == "!!null" {
			return d.errorf(fp, val, "want a value (text or number), got a %s", nodeKindName(val))
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64:
		return "whole number"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "true or false"
	}
	return k.String()
}

func nodeKindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return fmt.Sprintf("value %q", n.Value)
	}
	return "node"
}

package gen

import (
	"bytes"
	"encoding/json"
	"sort"
)

// The route manifest: every client-callable route and push of the modules of
// one generator run, with JSON Schemas (draft 2020-12) of their payloads, for
// tools and for client generators in other languages.

// ManifestVersion is the manifest's format version.
const ManifestVersion = 1

type manifestModule struct {
	source string
	mod    *Module
}

// obj is a JSON object whose keys keep their order.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshalNoEscape(e.k)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalNoEscape(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func (o obj) with(k string, v any) obj { return append(o, kv{k, v}) }

// withDoc adds a description when doc is not empty.
func (o obj) withDoc(doc string) obj {
	if doc == "" {
		return o
	}
	return o.with("description", doc)
}

func renderManifest(mods []manifestModule) ([]byte, error) {
	// Sorted, whatever order the packages were given in.
	sort.SliceStable(mods, func(i, j int) bool { return mods[i].mod.Type < mods[j].mod.Type })
	defs := map[string]*Message{}
	var modules []any
	for _, mm := range mods {
		mod := mm.mod
		routes := []any{}
		for _, m := range mod.Methods {
			if m.Kind != KindHandler {
				continue
			}
			r := obj{{"topic", m.Route}, {"handler", m.Name}, {"name", m.ClientName}}.withDoc(m.Doc)
			if m.Request != nil {
				r = r.with("request", schema(m.Request))
			}
			if m.Reply != nil {
				r = r.with("reply", schema(m.Reply))
			}
			routes = append(routes, r)
		}
		pushes := []any{}
		for _, p := range mod.Pushes {
			pushes = append(pushes, obj{{"topic", p.Topic}, {"name", p.Name}}.withDoc(p.Doc).with("body", schema(p.Body)))
		}
		for _, m := range mod.Messages {
			defs[m.Name] = m
		}
		modules = append(modules, obj{{"module", mod.Type}, {"source", mm.source}}.withDoc(mod.Doc).
			with("routes", routes).with("pushes", pushes))
	}
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	defsObj := obj{}
	for _, n := range names {
		m := defs[n]
		defsObj = defsObj.with(n, objectSchema(m.Fields).withDoc(m.Doc))
	}
	doc := obj{
		{"mqantgen", ManifestVersion},
		{"jsonSchemaDialect", "https://json-schema.org/draft/2020-12/schema"},
		{"protocol", obj{
			{"request", "MQTT PUBLISH of the JSON request on <topic>/<msgid> (a route without \"request\" takes {}); without /<msgid> the server sends no reply"},
			{"reply", "published on the request's own topic: {\"Result\": <reply>, \"Error\": \"\"}, or on failure {\"Result\": null, \"Error\": \"<text>\"}"},
			{"push", "published by the server on the push's topic with its body, to clients that need not subscribe"},
			{"schemas", "$ref values point into $defs of this document"},
		}},
		{"modules", modules},
		{"$defs", defsObj},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// schema is the JSON Schema of a Shape.
func schema(s *Shape) obj {
	var o obj
	switch s.Kind {
	case ShapeString:
		o = obj{{"type", "string"}}
		switch s.Format {
		case FormatDateTime:
			o = o.with("format", "date-time")
		case FormatBytes:
			o = o.with("contentEncoding", "base64")
		}
	case ShapeInteger:
		o = obj{{"type", "integer"}}
		switch {
		case s.Bits < 64 && s.Unsigned:
			o = o.with("minimum", 0).with("maximum", uint64(1)<<s.Bits-1)
		case s.Bits < 64:
			o = o.with("minimum", -(int64(1)<<(s.Bits-1))).with("maximum", int64(1)<<(s.Bits-1)-1)
		case s.Unsigned:
			o = o.with("minimum", 0)
		}
	case ShapeNumber:
		o = obj{{"type", "number"}}
	case ShapeBoolean:
		o = obj{{"type", "boolean"}}
	case ShapeAny:
		return obj{}
	case ShapeArray:
		o = obj{{"type", "array"}, {"items", schema(s.Elem)}}
		if s.Len > 0 {
			o = o.with("minItems", s.Len).with("maxItems", s.Len)
		}
	case ShapeMap:
		o = obj{{"type", "object"}, {"additionalProperties", schema(s.Elem)}}
	case ShapeObject:
		o = objectSchema(s.Fields)
	case ShapeRef:
		o = obj{{"$ref", "#/$defs/" + s.Ref.Name}}
	}
	if !s.Nullable {
		return o
	}
	if len(o) > 0 && o[0].k == "type" {
		o[0].v = []string{o[0].v.(string), "null"}
		return o
	}
	return obj{{"anyOf", []any{o, obj{{"type", "null"}}}}}
}

func objectSchema(fields []Field) obj {
	props := obj{}
	required := []string{}
	for _, f := range fields {
		fs := schema(&f.Shape)
		if f.Doc != "" {
			fs = fs.with("description", f.Doc)
		}
		props = props.with(f.Name, fs)
		if !f.Optional {
			required = append(required, f.Name)
		}
	}
	o := obj{{"type", "object"}, {"properties", props}}
	if len(required) > 0 {
		o = o.with("required", required)
	}
	return o
}

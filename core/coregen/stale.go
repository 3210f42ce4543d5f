package coregen

// This file is the one place generated code reaches reflect, and only at
// start (core/noreflect_test.go allows exactly this file): Go has no other
// way to list a struct's methods, and no compile-time check can notice a
// method that is there but should not be.

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/mqantgen/mqantgen/core"
)

// CheckHandlers fails when module has a Handler_ method that desc, its
// generated descriptor table, lacks: the method was added after the code
// was generated, and no client could call it. The generated OnInit calls it
// once, so a forgotten regeneration stops the start instead of failing per
// call at run time.
func CheckHandlers(module any, desc *core.ModuleDesc) error {
	t := reflect.TypeOf(module)
	name := t.Name()
	if t.Kind() == reflect.Pointer {
		name = t.Elem().Name()
	}
	var missing []string
	for i := 0; i < t.NumMethod(); i++ {
		m := t.Method(i).Name
		if strings.HasPrefix(m, "Handler_") && !desc.Has(m) {
			missing = append(missing, m)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("method %s.%s is not in the generated code of module type %s: run go generate", name, missing[0], desc.Type)
	}
	return fmt.Errorf("methods %s of %s are not in the generated code of module type %s: run go generate", strings.Join(missing, ", "), name, desc.Type)
}

package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keyport/keyport/directory/sources"
)

// keyport directory add and update: the management API's POST and PATCH
// /directories (the running server's through the control socket, or this
// process's), so the console's rules apply. A flag per setting of the
// console's form, named after its config.toml key (user_base_dn is
// --user-base-dn), from the source registry; the secret comes on stdin.

// directorySetting is one setting a flag sets.
type directorySetting struct {
	key   string // config.toml's
	kind  string // "string", "bool" or "list"
	types []string
}

// directorySettings lists every type's form settings but the secret, in
// the registry's order, each once.
func directorySettings() []directorySetting {
	var out []directorySetting
	for _, t := range sources.Types() {
		vals := t.Values(t.NewSettings(""))
		for _, key := range t.FormKeys() {
			v, ok := vals[key]
			if !ok {
				continue // the secret
			}
			if i := slices.IndexFunc(out, func(s directorySetting) bool { return s.key == key }); i >= 0 {
				out[i].types = append(out[i].types, t.Name)
				continue
			}
			kind := "string"
			switch v.(type) {
			case bool:
				kind = "bool"
			case []string:
				kind = "list"
			}
			out = append(out, directorySetting{key: key, kind: kind, types: []string{t.Name}})
		}
	}
	return out
}

// directoryFlags registers a flag per setting and returns what the flags
// the command line used set, by config.toml key.
func directoryFlags(fs *flag.FlagSet) func() map[string]any {
	strs, bools := map[string]*string{}, map[string]*bool{}
	byFlag := map[string]directorySetting{}
	for _, s := range directorySettings() {
		name := strings.ReplaceAll(s.key, "_", "-")
		byFlag[name] = s
		what := s.key + " (" + strings.Join(s.types, ", ") + ")"
		switch s.kind {
		case "bool":
			bools[name] = fs.Bool(name, false, what+": true or false")
		case "list":
			strs[name] = fs.String(name, "", what+": a list, comma or space separated (\"\": the default)")
		default:
			strs[name] = fs.String(name, "", what+" (\"\": the default)")
		}
	}
	return func() map[string]any {
		out := map[string]any{}
		fs.Visit(func(f *flag.Flag) {
			s, ok := byFlag[f.Name]
			if !ok {
				return
			}
			switch s.kind {
			case "bool":
				out[s.key] = *bools[f.Name]
			case "list":
				if v := *strs[f.Name]; v != "" {
					out[s.key] = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
				} else {
					out[s.key] = nil // back to the default
				}
			default:
				out[s.key] = *strs[f.Name]
				if *strs[f.Name] == "" {
					out[s.key] = nil
				}
			}
		})
		return out
	}
}

// secretKey is the setting of provider's secret.
func secretKey(provider string) (string, error) {
	t, err := sources.Lookup(provider)
	if err != nil {
		return "", usageError{fmt.Sprintf("--provider must be one of %s", providerNames())}
	}
	return t.SecretKey(), nil
}

func providerNames() string {
	var names []string
	for _, t := range sources.Types() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

// directoryAnswer is what add and update print of the API's answer.
type directoryAnswer struct {
	ID, Name, Provider string
	Disabled           bool
	HasSecret          bool `json:"has_secret"`
}

func (c *cli) directoryAdd(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("directory add")
	id := fs.String("id", "", "the directory's id: 1 to 64 letters, digits, dots, dashes or underscores")
	provider := fs.String("provider", "", "ldap (a directory) or oidc (an upstream OpenID Connect provider)")
	secretStdin := fs.Bool("secret-stdin", false, "read the bind password (ldap) or client secret (oidc) from stdin")
	settings := directoryFlags(fs)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *id == "" || *provider == "" {
		return usageError{"directory add needs --id and --provider"}
	}
	body := map[string]any{"id": *id, "provider": *provider, "settings": settings()}
	if *secretStdin {
		key, err := secretKey(*provider)
		if err != nil {
			return err
		}
		secret, err := c.readSecret(strings.ReplaceAll(key, "_", " "))
		if err != nil {
			return err
		}
		body["settings"].(map[string]any)[key] = secret
	}
	api, err := c.connect(*cfgPath)
	if err != nil {
		return err
	}
	defer api.close()
	var d directoryAnswer
	if _, err := api.call(ctx, http.MethodPost, "/directories", body, &d); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "directory %s (%s, %s) added\n", d.ID, d.Name, d.Provider)
	return nil
}

func (c *cli) directoryUpdate(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("directory update")
	id := fs.String("id", "", "the directory's id")
	secretStdin := fs.Bool("secret-stdin", false, "read a new bind password (ldap) or client secret (oidc) from stdin; without it the stored one is kept")
	disabled := fs.Bool("disabled", false, "turn the directory off (true) or on (false)")
	settings := directoryFlags(fs)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return usageError{"directory update needs --id"}
	}
	patch := map[string]any{}
	if s := settings(); len(s) > 0 || *secretStdin {
		patch["settings"] = s
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "disabled" {
			patch["disabled"] = *disabled
		}
	})
	if len(patch) == 0 {
		return usageError{"directory update: say what to change (see keyport directory update --help)"}
	}
	api, err := c.connect(*cfgPath)
	if err != nil {
		return err
	}
	defer api.close()
	path := "/directories/" + url.PathEscape(*id)
	if *secretStdin {
		// The secret's setting depends on the provider.
		var cur directoryAnswer
		if _, err := api.call(ctx, http.MethodGet, path, nil, &cur); err != nil {
			return err
		}
		key, err := secretKey(cur.Provider)
		if err != nil {
			return err
		}
		secret, err := c.readSecret(strings.ReplaceAll(key, "_", " "))
		if err != nil {
			return err
		}
		patch["settings"].(map[string]any)[key] = secret
	}
	var d directoryAnswer
	if _, err := api.call(ctx, http.MethodPatch, path, patch, &d); err != nil {
		return err
	}
	state := "on"
	if d.Disabled {
		state = "off"
	}
	fmt.Fprintf(c.stdout, "directory %s (%s, %s) updated; it is %s\n", d.ID, d.Name, d.Provider, state)
	return nil
}

package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport"
	"github.com/pelletier/go-toml/v2"
)

// writeFile writes content to name in a fresh temporary directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// mustLoad loads the embedded default plus content (if not empty) and fails
// the test on any error.
func mustLoad(t *testing.T, content string, getenv func(string) string) (*Config, []string) {
	t.Helper()
	path := ""
	if content != "" {
		path = writeFile(t, "keyport.toml", content)
	}
	c, warnings, err := Load(path, getenv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c, warnings
}

func TestDefault(t *testing.T) {
	c, warnings := mustLoad(t, "", nil)

	want := []string{"issuer: uses http://; fine for local testing only"}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}

	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", c.Issuer, "http://localhost:8080"},
		{"listen", c.Listen, "localhost:8080"},
		{"data_dir", c.DataDir, "./data"},
		{"log_level", c.LogLevel, "info"},
		{"templates_dir", c.TemplatesDir, ""},
		{"secret_key_file", c.SecretKeyFile, ""},
		{"session.cookie_name", c.Session.CookieName, "keyport_session"},
		{"session.lifetime", c.Session.Lifetime.Duration, 720 * time.Hour},
		{"session.secure_cookie", c.Session.SecureCookie, "auto"},
		{"session.same_site", c.Session.SameSite, "lax"},
		{"tokens.code", c.Tokens.Code.Duration, time.Minute},
		{"tokens.access", c.Tokens.Access.Duration, 15 * time.Minute},
		{"tokens.id", c.Tokens.ID.Duration, time.Hour},
		{"tokens.refresh", c.Tokens.Refresh.Duration, 720 * time.Hour},
		{"tokens.refresh_idle", c.Tokens.RefreshIdle.Duration, 168 * time.Hour},
		{"tokens.auth_request", c.Tokens.AuthRequest.Duration, 30 * time.Minute},
		{"keys.rotation_period", c.Keys.RotationPeriod.Duration, 720 * time.Hour},
		{"keys.algorithm", c.Keys.Algorithm, "RS256"},
		{"database.check", c.Database.Check, true},
		{"database.check_timeout", c.Database.CheckTimeout.Duration, 30 * time.Second},
		{"password.memory_kib", c.Password.MemoryKiB, 7168},
		{"password.iterations", c.Password.Iterations, 5},
		{"password.parallelism", c.Password.Parallelism, 1},
		{"password.min_length", c.Password.MinLength, 10},
		{"limits.max_body_bytes", c.Limits.MaxBodyBytes, int64(65536)},
		{"limits.max_login_attempts", c.Limits.MaxLoginAttempts, 10},
		{"limits.login_window", c.Limits.LoginWindow.Duration, 15 * time.Minute},
		{"http.hsts_max_age", c.HTTP.HSTSMaxAge.Duration, 8760 * time.Hour},
		{"http.hsts_include_subdomains", c.HTTP.HSTSIncludeSubdomains, false},
		{"audit.retention", c.Audit.Retention.Duration, 2160 * time.Hour},
		{"notifications.new_device", c.Notifications.NewDevice, true},
		{"notifications.password_changed", c.Notifications.PasswordChanged, true},
		{"notifications.second_factor", c.Notifications.SecondFactor, true},
		{"notifications.credentials", c.Notifications.Credentials, true},
		{"notifications.token_expiry", c.Notifications.TokenExpiry, true},
		{"notifications.blocked", c.Notifications.Blocked, true},
		{"limits.max_login_attempts_per_address", c.Limits.MaxLoginAttemptsPerAddress, 100},
		{"limits.account_lockout_failures", c.Limits.AccountLockoutFailures, 30},
		{"limits.account_lockout_wait", c.Limits.AccountLockoutWait.Duration, time.Minute},
		{"limits.account_lockout_max_wait", c.Limits.AccountLockoutMaxWait.Duration, 15 * time.Minute},
		{"limits.account_lockout_reset", c.Limits.AccountLockoutReset.Duration, 12 * time.Hour},
		{"limits.password_hash_concurrency", c.Limits.PasswordHashConcurrency, 0},
		{"limits.password_hash_queue", c.Limits.PasswordHashQueue, 16},
		{"len(clients)", len(c.Clients), 0},
		{"DBPath", c.DBPath(), filepath.Join("data", "keyport.db")},
		{"SecretKeyPath", c.SecretKeyPath(), filepath.Join("data", "secret.key")},
		{"SecureCookie", c.SecureCookie(), false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestDefaultHasEveryKey makes sure config.toml documents every key of
// Config: strict decoding catches keys the struct lacks, this catches keys
// the file lacks.
func TestDefaultHasEveryKey(t *testing.T) {
	var doc map[string]any
	if err := toml.Unmarshal(keyport.DefaultConfig, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, typ reflect.Type, m map[string]any)
	walk = func(prefix string, typ reflect.Type, m map[string]any) {
		for f := range typ.Fields() {
			key := f.Tag.Get("toml")
			// clients, directories and mail are commented-out examples,
			// loaded by their own tests below.
			if key == "" || key == "clients" || key == "directories" || key == "mail" {
				continue
			}
			v, ok := m[key]
			if !ok {
				t.Errorf("config.toml lacks %s%s", prefix, key)
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
				sub, ok := v.(map[string]any)
				if !ok {
					t.Errorf("config.toml: %s%s is not a table", prefix, key)
					continue
				}
				walk(prefix+key+".", f.Type, sub)
			}
		}
	}
	walk("", reflect.TypeFor[Config](), doc)
}

// TestDefaultClientExamples uncomments the [[clients]] examples at the end of
// config.toml and loads them, so the documentation stays valid.
func TestDefaultClientExamples(t *testing.T) {
	_, examples, ok := strings.Cut(string(keyport.DefaultConfig), "# Examples:\n")
	if !ok {
		t.Fatal("config.toml has no \"# Examples:\" line")
	}
	secretPath := writeFile(t, "wiki_secret", "a-secret-of-thirty-two-characters\n")
	var b strings.Builder
	for line := range strings.Lines(examples) {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		line = strings.Replace(line, "/run/secrets/wiki_client_secret", filepath.ToSlash(secretPath), 1)
		b.WriteString(line)
	}
	c, _ := mustLoad(t, b.String(), nil)

	var ids []string
	for _, cl := range c.Clients {
		ids = append(ids, cl.ID)
	}
	if want := []string{"wiki", "dashboard-spa", "backup-job", "payments", "frontend-api", "intranet"}; !slices.Equal(ids, want) {
		t.Fatalf("client ids = %q, want %q", ids, want)
	}
	if got, want := c.Clients[5].CustomClaims, []ClaimMapping{{Claim: "department", Source: "app_metadata.department", Scope: "org"},
		{Claim: "intranet_roles", Source: "roles", Scope: "org", In: []string{"id_token", "access_token"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("intranet custom claims = %+v, want %+v", got, want)
	}
	if got := c.Clients[0].Secret; got != "a-secret-of-thirty-two-characters" {
		t.Errorf("wiki secret = %q", got)
	}
}

// TestDefaultDirectoryExample loads the [[directories]] example of
// config.toml, so the documentation stays valid.
func TestDefaultDirectoryExample(t *testing.T) {
	_, rest, ok := strings.Cut(string(keyport.DefaultConfig), "# Directory example:\n")
	example, _, ok2 := strings.Cut(rest, "# (end of the directory example)")
	if !ok || !ok2 {
		t.Fatal("config.toml has no directory example")
	}
	pw := writeFile(t, "bind", "ldap-service-password\n")
	var b strings.Builder
	for line := range strings.Lines(example) {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		line = strings.Replace(line, "/run/secrets/ldap_bind_password", filepath.ToSlash(pw), 1)
		b.WriteString(line)
	}
	c, _ := mustLoad(t, b.String(), nil)
	if len(c.Directories) != 1 {
		t.Fatalf("directories: %+v", c.Directories)
	}
	d := c.Directories[0]
	if d.ID != "corp" || d.BindPassword != "ldap-service-password" || d.SyncInterval.Duration != time.Hour || !slices.Equal(d.LoginAttributes, []string{"uid", "mail"}) {
		t.Errorf("directory: %+v", d)
	}
}

// TestDefaultMailExample loads the [mail] example of config.toml, so the
// documentation stays valid, and checks that mail is off without it.
func TestDefaultMailExample(t *testing.T) {
	def, _ := mustLoad(t, "", nil)
	if def.Mail.Enabled() {
		t.Errorf("the built-in default turns mail on: %+v", def.Mail)
	}
	_, rest, ok := strings.Cut(string(keyport.DefaultConfig), "# Mail example:\n")
	example, _, ok2 := strings.Cut(rest, "# (end of the mail example)")
	if !ok || !ok2 {
		t.Fatal("config.toml has no mail example")
	}
	pw := writeFile(t, "smtp", "smtp-password\n")
	var b strings.Builder
	for line := range strings.Lines(example) {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		line = strings.Replace(line, "/run/secrets/smtp_password", filepath.ToSlash(pw), 1)
		b.WriteString(line)
	}
	c, _ := mustLoad(t, b.String(), nil)
	m := c.Mail
	if !m.Enabled() || m.Host != "smtp.example.com" || m.Port != 587 || m.TLS != "starttls" || m.Password != "smtp-password" ||
		m.From != "Keyport <keyport@example.com>" || m.Timeout.Duration != 10*time.Second {
		t.Errorf("mail: %+v", m)
	}
}

// TestMailDefaults checks the defaults Load fills in for a [mail] table
// with only a host and from: the port follows tls.
func TestMailDefaults(t *testing.T) {
	for _, tt := range []struct {
		tls      string
		wantTLS  string
		wantPort int
	}{
		{"", "starttls", 587},
		{"implicit", "implicit", 465},
		{"none", "none", 25},
	} {
		file := "[mail]\nhost = \"localhost\"\nfrom = \"id@example.com\"\n"
		if tt.tls != "" {
			file += "tls = \"" + tt.tls + "\"\n"
		}
		c, _ := mustLoad(t, file, nil)
		if c.Mail.TLS != tt.wantTLS || c.Mail.Port != tt.wantPort || c.Mail.Timeout.Duration != 10*time.Second {
			t.Errorf("tls %q: got tls %q, port %d, timeout %s; want %q, %d, 10s", tt.tls, c.Mail.TLS, c.Mail.Port, c.Mail.Timeout, tt.wantTLS, tt.wantPort)
		}
	}
}

// TestMailPasswordFile: the file is read at load, one trailing newline
// (LF or CRLF) is removed and nothing else; password and password_file
// together are refused.
func TestMailPasswordFile(t *testing.T) {
	for content, want := range map[string]string{
		"secret\n":     "secret",
		"secret\r\n":   "secret",
		"secret":       "secret",
		" secret \n\n": " secret \n",
	} {
		pw := writeFile(t, "pw", content)
		c, _ := mustLoad(t, "[mail]\nhost = \"localhost\"\nfrom = \"id@example.com\"\nusername = \"u\"\npassword_file = \""+filepath.ToSlash(pw)+"\"\n", nil)
		if c.Mail.Password != want {
			t.Errorf("file %q: password %q, want %q", content, c.Mail.Password, want)
		}
	}
	pw := writeFile(t, "pw", "secret\n")
	_, _, err := Load(writeFile(t, "k.toml", "[mail]\nhost = \"localhost\"\nfrom = \"id@example.com\"\nusername = \"u\"\npassword = \"x\"\npassword_file = \""+filepath.ToSlash(pw)+"\"\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "mail.password_file: set either password or password_file, not both") {
		t.Errorf("password and password_file: %v", err)
	}
	_, _, err = Load(writeFile(t, "k.toml", "[mail]\nhost = \"localhost\"\nfrom = \"id@example.com\"\nusername = \"u\"\npassword_file = \"/nonexistent/pw\"\n"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "mail.password_file: ") {
		t.Errorf("missing password_file: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	file := `
issuer = "https://file.example.com"
listen = ":9000"
data_dir = "/var/lib/file"
`
	tests := []struct {
		name                   string
		file                   string
		env                    map[string]string
		issuer, listen, datDir string
	}{
		{
			name:   "env beats default",
			env:    map[string]string{EnvIssuer: "https://env.example.com", EnvListen: "127.0.0.1:7000", EnvDataDir: "/srv/keyport"},
			issuer: "https://env.example.com", listen: "127.0.0.1:7000", datDir: "/srv/keyport",
		},
		{
			name:   "env beats file",
			file:   file,
			env:    map[string]string{EnvIssuer: "https://env.example.com/", EnvListen: "127.0.0.1:7000", EnvDataDir: "/srv/keyport"},
			issuer: "https://env.example.com", listen: "127.0.0.1:7000", datDir: "/srv/keyport",
		},
		{
			name:   "empty env is ignored",
			file:   file,
			env:    map[string]string{EnvIssuer: "", EnvListen: ""},
			issuer: "https://file.example.com", listen: ":9000", datDir: "/var/lib/file",
		},
		{
			name:   "one variable only",
			file:   file,
			env:    map[string]string{EnvDataDir: "/tmp/kp"},
			issuer: "https://file.example.com", listen: ":9000", datDir: "/tmp/kp",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, tt.file, env(tt.env))
			if c.Issuer != tt.issuer || c.Listen != tt.listen || c.DataDir != tt.datDir {
				t.Errorf("got issuer=%q listen=%q data_dir=%q, want %q %q %q",
					c.Issuer, c.Listen, c.DataDir, tt.issuer, tt.listen, tt.datDir)
			}
		})
	}
}

func TestFileLayersOnDefault(t *testing.T) {
	def, _ := mustLoad(t, "", nil)
	c, warnings := mustLoad(t, `
issuer = "https://id.example.com/"

[tokens]
access = "5m"

[password]
memory_kib = 19456
iterations = 2
`, nil)
	if len(warnings) != 0 {
		t.Errorf("warnings = %q, want none", warnings)
	}

	want := *def
	want.Issuer = "https://id.example.com" // trailing slash trimmed
	want.Tokens.Access = Duration{5 * time.Minute}
	want.Password.MemoryKiB = 19456
	want.Password.Iterations = 2
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("layered config:\n got %+v\nwant %+v", *c, want)
	}
	if !c.SecureCookie() {
		t.Error("SecureCookie() = false with an https issuer and secure_cookie = \"auto\"")
	}
}

// TestClientsReplaceDefault layers a file over a default that has clients:
// the file's [[clients]] replace the default's list entirely (no leftover
// fields from a default entry at the same index), and a file without
// clients keeps it.
func TestClientsReplaceDefault(t *testing.T) {
	defaults := string(keyport.DefaultConfig) + `
[[clients]]
id = "default-one"
name = "Default one"
secret = "0123456789abcdef0123"
redirect_uris = ["https://one.example.com/cb"]
skip_consent = true

[[clients]]
id = "default-two"
public = true
redirect_uris = ["https://two.example.com/cb"]
`
	t.Run("file with clients", func(t *testing.T) {
		path := writeFile(t, "keyport.toml", `
[[clients]]
id = "mine"
public = true
redirect_uris = ["https://mine.example.com/cb"]
`)
		c, _, err := load([]byte(defaults), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []Client{{
			ID:           "mine",
			Name:         "mine",
			Public:       true,
			RedirectURIs: []string{"https://mine.example.com/cb"},
			GrantTypes:   DefaultGrantTypes(),
		}}
		if !reflect.DeepEqual(c.Clients, want) {
			t.Errorf("clients:\n got %+v\nwant %+v", c.Clients, want)
		}
	})
	t.Run("file without clients", func(t *testing.T) {
		path := writeFile(t, "keyport.toml", "log_level = \"debug\"\n")
		c, _, err := load([]byte(defaults), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Clients) != 2 || c.Clients[0].ID != "default-one" || c.Clients[1].ID != "default-two" {
			t.Errorf("clients = %+v, want the two default clients", c.Clients)
		}
	})
}

func TestClientsFromFile(t *testing.T) {
	secretPath := writeFile(t, "secret", "\n  s3cret-from-a-file-0123456789 \n\n")
	c, warnings := mustLoad(t, `
[[clients]]
id = "wiki"
name = "Team wiki"
secret_file = "`+filepath.ToSlash(secretPath)+`"
redirect_uris = ["https://wiki.example.com/cb"]
post_logout_redirect_uris = ["https://wiki.example.com/"]
access_token_jwt = true
skip_consent = true

[[clients]]
id = "cli"
public = true
redirect_uris = ["http://127.0.0.1/callback", "com.example.cli:/callback"]
grant_types = ["authorization_code"]

[[clients]]
id = "job"
secret = "0123456789abcdef"
grant_types = ["client_credentials"]
`, nil)
	if len(warnings) != 1 {
		t.Errorf("warnings = %q, want only the http issuer one", warnings)
	}
	want := []Client{
		{
			ID:                     "wiki",
			Name:                   "Team wiki",
			Secret:                 "s3cret-from-a-file-0123456789",
			SecretFile:             filepath.ToSlash(secretPath),
			RedirectURIs:           []string{"https://wiki.example.com/cb"},
			PostLogoutRedirectURIs: []string{"https://wiki.example.com/"},
			GrantTypes:             []string{"authorization_code", "refresh_token"},
			AccessTokenJWT:         true,
			SkipConsent:            true,
		},
		{
			ID:           "cli",
			Name:         "cli",
			RedirectURIs: []string{"http://127.0.0.1/callback", "com.example.cli:/callback"},
			GrantTypes:   []string{"authorization_code"},
			Public:       true,
		},
		{
			ID:         "job",
			Name:       "job",
			Secret:     "0123456789abcdef",
			GrantTypes: []string{"client_credentials"},
		},
	}
	if !reflect.DeepEqual(c.Clients, want) {
		t.Errorf("clients:\n got %+v\nwant %+v", c.Clients, want)
	}
	if !c.Clients[0].HasGrant(GrantRefreshToken) || c.Clients[1].HasGrant(GrantRefreshToken) {
		t.Error("HasGrant is wrong")
	}
}

// TestLoadErrors covers failures of Load itself: files, decoding, secret
// files.
func TestLoadErrors(t *testing.T) {
	missingSecret := filepath.Join(t.TempDir(), "no-such-secret")
	emptySecret := writeFile(t, "empty", " \n")
	tests := []struct {
		name string
		file string
		want []string // substrings of the error
	}{
		{
			name: "unknown top-level key",
			file: "issuer = \"https://a.example.com\"\nisuer = \"x\"\n",
			want: []string{`:2:1: unknown key "isuer"`},
		},
		{
			name: "unknown key in a table",
			file: "[tokens]\naccess = \"5m\"\nacess_token = \"5m\"\n",
			want: []string{`:3:1: unknown key "tokens.acess_token"`},
		},
		{
			name: "unknown table",
			file: "[token]\naccess = \"5m\"\n",
			want: []string{`:1:2: unknown key "token"`},
		},
		{
			name: "unknown client key, all reported",
			file: "foo = 1\n[[clients]]\nid = \"a\"\nredirect_uri = \"https://a/cb\"\n",
			want: []string{`:1:1: unknown key "foo"`, `:4:1: unknown key "clients.redirect_uri"`},
		},
		{
			// go-toml matches keys in any case; Keyport's are lower case.
			name: "keys in another case, all reported",
			file: "Issuer = \"https://a.example.com\"\n[Tokens]\naccess = \"5m\"\n[tokens]\nAccess = \"6m\"\n[[clients]]\nid = \"a\"\nredirect_uris = [\"https://a.example.com/cb\"]\nPublic = true\n[[clients.custom_claims]]\nclaim = \"dept\"\nSource = \"app_metadata.dept\"\nscope = \"org\"\n",
			want: []string{`unknown key "Issuer" (keys are case-sensitive: "issuer")`, `unknown key "Tokens"`, `unknown key "tokens.Access"`, `unknown key "clients[0].Public"`, `unknown key "clients[0].custom_claims[0].Source"`},
		},
		{
			name: "bad duration",
			file: "[tokens]\naccess = \"15 minutes\"\n",
			want: []string{":2:", "tokens.access", `invalid duration "15 minutes"`},
		},
		{
			name: "unquoted durations",
			file: "[session]\nlifetime = 720\n[tokens]\naccess = 15\n",
			want: []string{"session.lifetime: durations are quoted strings", "tokens.access: durations are quoted strings"},
		},
		{
			name: "wrong type",
			file: "[password]\nmemory_kib = \"lots\"\n",
			want: []string{":2:", "password.memory_kib"},
		},
		{
			name: "unquoted secure_cookie",
			file: "[session]\nsecure_cookie = true\n",
			want: []string{":2:", `session.secure_cookie:`, `quoted string: "auto", "true" or "false"`},
		},
		{
			name: "bad TOML",
			file: "issuer = \n",
			want: []string{":1:"},
		},
		{
			name: "missing secret_file",
			file: "[[clients]]\nid = \"a\"\nsecret_file = \"" + filepath.ToSlash(missingSecret) + "\"\nredirect_uris = [\"https://a.example.com/cb\"]\n",
			want: []string{"clients[0].secret_file:", "no-such-secret"},
		},
		{
			name: "empty secret_file",
			file: "[[clients]]\nid = \"a\"\nsecret_file = \"" + filepath.ToSlash(emptySecret) + "\"\nredirect_uris = [\"https://a.example.com/cb\"]\n",
			want: []string{"clients[0].secret_file:", "is empty"},
		},
		{
			name: "secret and secret_file",
			file: "[[clients]]\nid = \"a\"\nsecret = \"0123456789abcdef\"\nsecret_file = \"" + filepath.ToSlash(emptySecret) + "\"\nredirect_uris = [\"https://a.example.com/cb\"]\n",
			want: []string{"clients[0].secret_file: set either secret or secret_file, not both"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "keyport.toml", tt.file)
			_, _, err := Load(path, nil)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(tt.name, "key") && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.toml")
		c, _, err := Load(path, nil)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(missing) error = %v, want one naming %s", err, path)
		}
		if c != nil {
			t.Error("Load(missing) returned a config")
		}
	})
}

func TestDuration(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d.Duration != 90*time.Minute {
		t.Fatalf("UnmarshalText(1h30m) = %v, %v", d, err)
	}
	b, err := d.MarshalText()
	if err != nil || string(b) != "1h30m0s" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	for _, bad := range []string{"", "5", "1d", "soon"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}

	// Round trip through go-toml.
	in := struct {
		D Duration `toml:"d"`
	}{Duration{20 * time.Second}}
	out := in
	out.D = Duration{}
	data, err := toml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := toml.Unmarshal(data, &out); err != nil || out != in {
		t.Errorf("round trip through %q gave %v, %v", data, out, err)
	}
}

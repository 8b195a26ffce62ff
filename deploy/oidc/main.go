// Command modelog-oidc is the local stack's OpenID Connect provider: Ory
// Hydra, which speaks the protocol (discovery, authorization with PKCE,
// tokens, JWKS), and the login and consent pages Hydra leaves to its host,
// which know the stack's people, their passwords and their groups.
//
// It listens on the one port the stack gives the provider. Hydra's public
// and admin APIs listen on unix sockets in its data directory, readable by
// this user only: the public one is reached through this port, the admin one
// (which accepts logins and registers clients) from no port at all.
//
// Hydra runs as this process's child, in its process group: stopping the
// group stops both, and Hydra's exit ends this process.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// A person who may sign in: the password is read from a file (the stack's
// secrets), the claims go into every ID token Hydra issues for them.
type person struct {
	Username     string         `json:"username"`
	PasswordFile string         `json:"password_file"`
	Claims       map[string]any `json:"claims"`
	passwordHash [32]byte
}

type people map[string]*person

func loadPeople(path string) (people, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file struct {
		Users []*person `json:"users"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	found := people{}
	for _, p := range file.Users {
		secret, err := os.ReadFile(p.PasswordFile)
		if err != nil {
			return nil, err
		}
		p.passwordHash = sha256.Sum256(bytes.TrimSpace(secret))
		found[p.Username] = p
	}
	return found, nil
}

// check compares digests in constant time, so a wrong password takes as long
// whatever its length or its common prefix with the right one.
func (ps people) check(username, password string) *person {
	p, known := ps[username]
	given := sha256.Sum256([]byte(password))
	if !known {
		return nil
	}
	if subtle.ConstantTimeCompare(given[:], p.passwordHash[:]) != 1 {
		return nil
	}
	return p
}

func unixClient(socket string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}},
	}
}

// hydraAdmin is Hydra's admin API over its unix socket.
type hydraAdmin struct{ client *http.Client }

// call sends body (when not nil) and decodes the answer into out; an answer
// other than 200 is an error carrying Hydra's status.
func (h hydraAdmin) call(method, path string, query url.Values, body, out any) error {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, "http://hydra-admin"+path+"?"+query.Encode(), reader)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &hydraError{status: resp.StatusCode, body: string(answer)}
	}
	return json.Unmarshal(answer, out)
}

type hydraError struct {
	status int
	body   string
}

func (e *hydraError) Error() string { return fmt.Sprintf("hydra answered %d: %s", e.status, e.body) }

type redirect struct {
	RedirectTo string `json:"redirect_to"`
}

var page = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in to modelog</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<main>
<h1>Sign in to modelog</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
{{if .Challenge}}
<form method="post" action="/login">
<input type="hidden" name="login_challenge" value="{{.Challenge}}">
<p><label for="username">User name</label><br><input id="username" name="username" autocomplete="username" required autofocus></p>
<p><label for="password">Password</label><br><input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Sign in</button></p>
</form>
{{end}}
</main>
</body>
</html>
`))

type provider struct {
	people people
	admin  hydraAdmin
}

func (p provider) render(w http.ResponseWriter, status int, challenge, problem string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// No form-action: browsers apply it to the whole redirect chain after the
	// post, and that chain ends at the console's callback, on another origin.
	// The page runs no script, so no form can be injected into it.
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = page.Execute(w, map[string]string{"Challenge": challenge, "Error": problem})
}

// flowError tells the person why this sign-in cannot go on: an unknown,
// used or expired challenge (Hydra's 404 and 410) means starting again.
func (p provider) flowError(w http.ResponseWriter, err error) {
	var he *hydraError
	if errors.As(err, &he) && (he.status == http.StatusNotFound || he.status == http.StatusGone) {
		p.render(w, http.StatusGone, "", "This sign-in has expired or was already used: start again from modelog.")
		return
	}
	log.Printf("login: %v", err)
	p.render(w, http.StatusBadGateway, "", "The sign-in service could not finish this step: try again.")
}

func (p provider) login(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		p.submitLogin(w, r)
		return
	}
	challenge := r.URL.Query().Get("login_challenge")
	if challenge == "" {
		p.render(w, http.StatusBadRequest, "", "Sign in from modelog: this page is a step of its sign-in.")
		return
	}
	var request struct {
		Skip    bool   `json:"skip"`
		Subject string `json:"subject"`
	}
	query := url.Values{"login_challenge": {challenge}}
	if err := p.admin.call(http.MethodGet, "/admin/oauth2/auth/requests/login", query, nil, &request); err != nil {
		p.flowError(w, err)
		return
	}
	if request.Skip { // Hydra already knows this browser's person
		p.acceptLogin(w, r, challenge, request.Subject)
		return
	}
	p.render(w, http.StatusOK, challenge, "")
}

func (p provider) submitLogin(w http.ResponseWriter, r *http.Request) {
	challenge := r.PostFormValue("login_challenge")
	who := p.people.check(r.PostFormValue("username"), r.PostFormValue("password"))
	if who == nil {
		// Which of the two was wrong stays unsaid.
		p.render(w, http.StatusUnauthorized, challenge, "Unknown user name or wrong password.")
		return
	}
	p.acceptLogin(w, r, challenge, who.Username)
}

func (p provider) acceptLogin(w http.ResponseWriter, r *http.Request, challenge, subject string) {
	var next redirect
	query := url.Values{"login_challenge": {challenge}}
	body := map[string]any{"subject": subject, "remember": false}
	if err := p.admin.call(http.MethodPut, "/admin/oauth2/auth/requests/login/accept", query, body, &next); err != nil {
		p.flowError(w, err)
		return
	}
	http.Redirect(w, r, next.RedirectTo, http.StatusSeeOther)
}

// consent grants what modelog's console asked for without a question: the
// console is the stack's own client, not a third party. The person's claims
// (groups, grants, name) go into the ID token here.
func (p provider) consent(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("consent_challenge")
	query := url.Values{"consent_challenge": {challenge}}
	var request struct {
		Subject        string   `json:"subject"`
		Scopes         []string `json:"requested_scope"`
		TokenAudiences []string `json:"requested_access_token_audience"`
	}
	if err := p.admin.call(http.MethodGet, "/admin/oauth2/auth/requests/consent", query, nil, &request); err != nil {
		p.flowError(w, err)
		return
	}
	who, known := p.people[request.Subject]
	if !known { // removed from the users file since they signed in
		p.render(w, http.StatusForbidden, "", "This person may no longer sign in.")
		return
	}
	var next redirect
	body := map[string]any{
		"grant_scope":                 request.Scopes,
		"grant_access_token_audience": request.TokenAudiences,
		"remember":                    false,
		"session":                     map[string]any{"id_token": who.Claims},
	}
	if err := p.admin.call(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept", query, body, &next); err != nil {
		p.flowError(w, err)
		return
	}
	http.Redirect(w, r, next.RedirectTo, http.StatusFound)
}

// toHydra forwards every other path (discovery, authorize, token, JWKS,
// userinfo) to Hydra's public socket, keeping the Host the browser used.
func toHydra(socket string) http.Handler {
	target, _ := url.Parse("http://hydra-public")
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport: unixClient(socket).Transport,
	}
}

func startHydra(binary, config string, sockets ...string) (*exec.Cmd, error) {
	for _, socket := range sockets {
		// A socket file left by a killed run would make Hydra's listen fail.
		if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	// --dev: the issuer is plain http on the loopback, which Hydra otherwise refuses.
	// --sqa-opt-out: Hydra reports usage to Ory by default; no phoning home from dev and CI.
	cmd := exec.Command(binary, "serve", "all", "--dev", "--sqa-opt-out", "--config", config)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Should this process die without a word, Hydra goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	return cmd, cmd.Start()
}

func main() {
	listen := flag.String("listen", "127.0.0.1:4444", "the provider's address: its issuer URL's host and port")
	hydra := flag.String("hydra", "hydra", "the Hydra binary")
	config := flag.String("config", "hydra.yml", "Hydra's configuration file")
	publicSocket := flag.String("public-socket", "public.sock", "Hydra's public API socket (serve.public.host)")
	adminSocket := flag.String("admin-socket", "admin.sock", "Hydra's admin API socket (serve.admin.host)")
	users := flag.String("users", "users.json", "the people who may sign in, with their password files and claims")
	flag.Parse()
	log.SetPrefix("modelog-oidc: ")

	known, err := loadPeople(*users)
	if err != nil {
		log.Fatalf("users: %v", err)
	}
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	cmd, err := startHydra(*hydra, *config, *publicSocket, *adminSocket)
	if err != nil {
		log.Fatalf("hydra: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	p := provider{people: known, admin: hydraAdmin{unixClient(*adminSocket)}}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.HandleFunc("/consent", p.consent)
	mux.Handle("/", toHydra(*publicSocket))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("serve: %v", err)
		}
	}()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-exited:
		log.Fatalf("hydra exited: %v", err)
	case <-stop:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		log.Printf("stopped")
	}
}

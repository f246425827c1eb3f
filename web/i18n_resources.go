package web

// deResources is German for resource indicators (RFC 8707): the app
// form's field (templates/admin_app.html).
var deResources = map[string]string{
	"Resources the app may ask access tokens for (RFC 8707; one URI a line; empty: none)": "Ressourcen, für die die App Access-Tokens anfordern darf (RFC 8707; eine URI pro Zeile; leer: keine)",
}

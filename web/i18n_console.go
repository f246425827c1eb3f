package web

// deConsole is German for the admin console's frame: its menu and the
// overview page.
var deConsole = map[string]string{
	"Administration":                 "Verwaltung",
	"Overview":                       "Übersicht",
	"Users":                          "Benutzer",
	"Apps":                           "Apps",
	"This credential may only read.": "Dieser Zugang darf nur lesen.",
	"Scripts and the command line reach the same functions through the management API, described at /api/v1/openapi.json.": "Skripte und die Kommandozeile erreichen dieselben Funktionen über die Verwaltungs-API, beschrieben unter /api/v1/openapi.json.",
}

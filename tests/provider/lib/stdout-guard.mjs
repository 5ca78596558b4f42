// stdout carries exactly one line, "READY <url>", which test harnesses wait for. Everything that
// libraries print (oidc-provider writes its NOTICEs with console.info) goes to stderr instead.
// server.mjs imports this module first so it runs before any other module's code.

/* eslint-disable no-console */
console.log = console.error;
console.info = console.error;
console.debug = console.error;

#!/usr/bin/env node
// `node cli/oanix.ts …` works as well as the `oanix` bin (cli/oanix.mjs, which starts faster:
// a .ts entry is type-stripped before any cache can be switched on).
import "./oanix.mjs";

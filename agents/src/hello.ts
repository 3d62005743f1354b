// hello: the smallest realistic agent.
// Prints "hello" and, when the process has a /task, writes {"ok":true} to /task/result.json.
// Exit 0 (1 if /task exists but the result cannot be written). Used to measure spawn cost.

import { eprintln, exists, exit, lastError, println, writeText } from "../sdk";

println("hello");
if (exists("/task")) {
  if (!writeText("/task/result.json", "{\"ok\":true}\n")) {
    eprintln("hello: " + lastError().toString());
    exit(1);
  }
}

import { afterAll, describe } from "bun:test";
import { singleServer } from "../helpers/deployments.ts";
import { killAll, programs } from "../helpers/process-driver.ts";
import { assignmentCases } from "./assignment-flows.ts";

afterAll(killAll);

describe.concurrent.each(programs)("%s", (_title, program) => {
  assignmentCases(program, singleServer);
});

// How far along a candidate is, from the stream's progress events. Codex
// reports phases, not percentages, so each known phase is a fixed step and
// unknown ones creep forward; the bar never moves back.

import type { Progress } from "./types.js";

const STAGE_STEP: Record<string, number> = {
  STAGE_QUEUED: 3,
  STAGE_CANDIDATE_STARTED: 10,
  STAGE_CANDIDATE_FINISHED: 95,
};

const PHASE_STEP: Record<string, number> = {
  "thread.started": 20,
  "turn.started": 30,
  reasoning: 45,
  agent_message: 55,
  "turn.completed": 90,
};

/** The new percentage for a candidate that was at `current`. */
export function advance(current: number, progress: Progress): number {
  let next = STAGE_STEP[progress.stage] ?? current;
  if (progress.stage === "STAGE_CODEX_PHASE") {
    const step = PHASE_STEP[progress.phase ?? ""];
    // A repeated or unknown phase (more messages, tool calls) creeps toward 85.
    next = step !== undefined && step > current ? step : current + (85 - current) * 0.15;
  }
  return Math.min(100, Math.max(current, Math.round(next)));
}

/** A short line for the candidate's status text (never the prompt). */
export function describeProgress(progress: Progress): string {
  switch (progress.stage) {
    case "STAGE_QUEUED":
      return `Queued, ${progress.queue_position ?? 0} ahead`;
    case "STAGE_CANDIDATE_STARTED":
      return "Codex started";
    case "STAGE_CANDIDATE_FINISHED":
      return `Finished: ${progress.detail ?? ""}`.trim();
    case "STAGE_CODEX_PHASE":
      if (progress.phase === "warning") return "Codex: working (warning)";
      return progress.detail ? `Codex: ${progress.detail}` : `Codex: ${progress.phase ?? "working"}`;
    default:
      return progress.stage;
  }
}

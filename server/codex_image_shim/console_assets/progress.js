const STAGE_STEP = {
    STAGE_QUEUED: 3,
    STAGE_CANDIDATE_STARTED: 10,
    STAGE_CANDIDATE_FINISHED: 95,
};
const PHASE_STEP = {
    "thread.started": 20,
    "turn.started": 30,
    reasoning: 45,
    agent_message: 55,
    "turn.completed": 90,
};
export function advance(current, progress) {
    let next = STAGE_STEP[progress.stage] ?? current;
    if (progress.stage === "STAGE_CODEX_PHASE") {
        const step = PHASE_STEP[progress.phase ?? ""];
        next = step !== undefined && step > current ? step : current + (85 - current) * 0.15;
    }
    return Math.min(100, Math.max(current, Math.round(next)));
}
export function describeProgress(progress) {
    switch (progress.stage) {
        case "STAGE_QUEUED":
            return `Queued, ${progress.queue_position ?? 0} ahead`;
        case "STAGE_CANDIDATE_STARTED":
            return "Codex started";
        case "STAGE_CANDIDATE_FINISHED":
            return `Finished: ${progress.detail ?? ""}`.trim();
        case "STAGE_CODEX_PHASE":
            if (progress.phase === "warning")
                return "Codex: working (warning)";
            return progress.detail ? `Codex: ${progress.detail}` : `Codex: ${progress.phase ?? "working"}`;
        default:
            return progress.stage;
    }
}

"""Stage 3: prompts + visual analysis -> sound palette -> cue sheet."""

from v2a_core.plan.planner import PlanSettings, plan
from v2a_core.plan.prompt import excluded_categories, parse_prompt

__all__ = ["PlanSettings", "excluded_categories", "parse_prompt", "plan"]

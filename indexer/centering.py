"""Taking the language out of the vectors: a passage is found for what it says, not for the language it is in.

Multilingual models give every text of one language a shared component: a question in Russian then scores an
off-topic Russian passage above the right Chinese one (the "language bias" of LAReQA and of Libovický et al.,
2020). Two means remove it:

- each language's **mean passage vector**, taken from the archive itself: every segment stores the sum and count
  of its passages' vectors by language (:func:`indexer.storage.segment.write_language_sums`), and a snapshot adds
  them up, so the means follow the archive as it grows. A language with few passages is drawn towards the mean of
  all passages, lest centering erase the passages themselves.
- one **mean question vector**, from a fixed set of everyday questions in many languages (:data:`QUESTIONS`), not
  one mean per question language: measured on XQuAD it did as well as per-language means, and it holds for a
  language the set does not cover. It depends on the model alone, so it is computed once and kept in the model
  cache.

A passage's centered similarity is the cosine between the question minus the question mean and the passage
minus its language's mean, in an archive of several languages (:data:`ONE_LANGUAGE_FROM`); in an archive of one,
the plain cosine. Nothing here is tuned per language; the same rule serves Greek or Thai.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence

import numpy as np

from . import config
from .embedder import Embedder

# Passages a language's own mean counts as: with fewer, its mean leans towards all passages' (XQuAD's mixed
# archive has 40 passages a language: more prior costs it a point of R@1 for every 5 passages).
PRIOR_PASSAGES = 1
# Centering applies while no language holds this share of the passages: in an archive of one language there is no
# other language to be biased against, and centering cost SQuAD-it's Italian archive 1.4 points of dense R@10.
ONE_LANGUAGE_FROM = 0.95

QUESTIONS = (
    "What did the government decide about the new law?",
    "How many people were injured in the accident?",
    "When will the election results be announced?",
    "Why did the company close its factory?",
    "Who won the match on Sunday?",
    "Where was the summit held this year?",
    "Che cosa ha deciso il governo sulla nuova legge?",
    "Quante persone sono rimaste ferite nell'incidente?",
    "Quando saranno annunciati i risultati delle elezioni?",
    "Perché l'azienda ha chiuso la sua fabbrica?",
    "Chi ha vinto la partita di domenica?",
    "Dove si è tenuto il vertice quest'anno?",
    "Qu'a décidé le gouvernement au sujet de la nouvelle loi ?",
    "Combien de personnes ont été blessées dans l'accident ?",
    "Quand les résultats des élections seront-ils annoncés ?",
    "Pourquoi l'entreprise a-t-elle fermé son usine ?",
    "Qui a gagné le match dimanche ?",
    "Où le sommet s'est-il tenu cette année ?",
    "Was hat die Regierung über das neue Gesetz beschlossen?",
    "Wie viele Menschen wurden bei dem Unfall verletzt?",
    "Wann werden die Wahlergebnisse bekannt gegeben?",
    "Warum hat das Unternehmen seine Fabrik geschlossen?",
    "Wer hat das Spiel am Sonntag gewonnen?",
    "Wo fand der Gipfel in diesem Jahr statt?",
    "¿Qué decidió el gobierno sobre la nueva ley?",
    "¿Cuántas personas resultaron heridas en el accidente?",
    "¿Cuándo se anunciarán los resultados de las elecciones?",
    "¿Por qué cerró la empresa su fábrica?",
    "¿Quién ganó el partido del domingo?",
    "¿Dónde se celebró la cumbre este año?",
    "O que o governo decidiu sobre a nova lei?",
    "Quantas pessoas ficaram feridas no acidente?",
    "Quando serão anunciados os resultados das eleições?",
    "Por que a empresa fechou a sua fábrica?",
    "Что правительство решило по поводу нового закона?",
    "Сколько человек пострадали в аварии?",
    "Когда объявят результаты выборов?",
    "Почему компания закрыла свой завод?",
    "Кто выиграл матч в воскресенье?",
    "Где прошёл саммит в этом году?",
    "ماذا قررت الحكومة بشأن القانون الجديد؟",
    "كم عدد الأشخاص الذين أصيبوا في الحادث؟",
    "متى سيتم الإعلان عن نتائج الانتخابات؟",
    "لماذا أغلقت الشركة مصنعها؟",
    "من فاز بالمباراة يوم الأحد؟",
    "أين عقدت القمة هذا العام؟",
    "政府对新法律做出了什么决定？",
    "事故中有多少人受伤？",
    "选举结果什么时候公布？",
    "公司为什么关闭了工厂？",
    "谁赢得了星期天的比赛？",
    "今年的峰会在哪里举行？",
    "政府は新しい法律について何を決めましたか？",
    "事故で何人がけがをしましたか？",
    "選挙の結果はいつ発表されますか？",
    "なぜ会社は工場を閉鎖したのですか？",
    "सरकार ने नए कानून के बारे में क्या फैसला किया?",
    "दुर्घटना में कितने लोग घायल हुए?",
    "चुनाव के नतीजे कब घोषित होंगे?",
    "कंपनी ने अपना कारखाना क्यों बंद किया?",
    "Hükümet yeni yasa hakkında ne karar verdi?",
    "Kazada kaç kişi yaralandı?",
    "Seçim sonuçları ne zaman açıklanacak?",
    "Şirket fabrikasını neden kapattı?",
    "Ποιος κέρδισε τον αγώνα την Κυριακή;",
    "Πού έγινε η σύνοδος κορυφής φέτος;",
    "Ai đã thắng trận đấu hôm Chủ nhật?",
    "Hội nghị thượng đỉnh năm nay được tổ chức ở đâu?",
    "In which year was the bridge over the river completed?",
    "Which scientist first described the effect of the new vaccine?",
    "What is the name of the largest city in the region?",
    "How long did the construction of the railway take?",
    "Which party formed the coalition after the vote?",
    "What percentage of the population lives in rural areas?",
    "In quale secolo fu costruita la cattedrale della città?",
    "Quale fiume attraversa la capitale del paese?",
    "Quanti abitanti aveva la regione all'inizio del secolo?",
    "In welchem Jahr wurde die Universität gegründet?",
    "Welcher Fluss fließt durch die Hauptstadt des Landes?",
    "Wie hoch war die Arbeitslosenquote im letzten Jahr?",
    "¿En qué año se fundó la universidad?",
    "¿Qué río atraviesa la capital del país?",
    "¿Cuál fue la causa principal de la guerra?",
    "En quelle année l'université a-t-elle été fondée ?",
    "Quel fleuve traverse la capitale du pays ?",
    "В каком году был основан университет?",
    "Какая река протекает через столицу страны?",
    "Как называется самый большой город региона?",
    "في أي عام تأسست الجامعة؟",
    "ما هو النهر الذي يمر عبر عاصمة البلاد؟",
    "ما هي نسبة السكان الذين يعيشون في المناطق الريفية؟",
    "这所大学是哪一年成立的？",
    "哪条河流经这个国家的首都？",
    "该地区最大的城市叫什么名字？",
    "その大学は何年に設立されましたか？",
    "विश्वविद्यालय की स्थापना किस वर्ष हुई थी?",
    "Üniversite hangi yılda kuruldu?",
    "Σε ποιο έτος ιδρύθηκε το πανεπιστήμιο;",
    "Trường đại học được thành lập vào năm nào?",
    "มหาวิทยาลัยก่อตั้งขึ้นในปีใด",
    "Who was the first president of the organisation?",
    "What kind of engine does the new aircraft use?",
    "How many goals did the striker score last season?",
    "Which country hosted the tournament in 1998?",
    "What did the court rule in the appeal?",
    "Which disease did the researchers study?",
    "How much did the museum pay for the painting?",
    "What language is spoken in the northern provinces?",
    "Chi ha scritto il romanzo vincitore del premio?",
    "Quanto è costato il nuovo stadio?",
    "Quale malattia hanno studiato i ricercatori?",
    "Wer war der erste Präsident der Organisation?",
    "Wie viel hat das Museum für das Gemälde bezahlt?",
    "¿Quién fue el primer presidente de la organización?",
    "¿Cuántos goles marcó el delantero la temporada pasada?",
    "Qui a été le premier président de l'organisation ?",
    "Кто был первым президентом организации?",
    "Сколько голов забил нападающий в прошлом сезоне?",
    "من كان أول رئيس للمنظمة؟",
    "كم هدفا سجل المهاجم في الموسم الماضي؟",
    "谁是该组织的第一任主席？",
    "博物馆花了多少钱买这幅画？",
    "この組織の初代会長は誰でしたか？",
    "संगठन के पहले अध्यक्ष कौन थे?",
    "Örgütün ilk başkanı kimdi?",
    "Ποιος ήταν ο πρώτος πρόεδρος του οργανισμού;",
    "Ai là chủ tịch đầu tiên của tổ chức?",
    "ใครเป็นประธานคนแรกขององค์กร",
    "Quem foi o primeiro presidente da organização?",
    "Kto był pierwszym prezesem organizacji?",
    "Wie was de eerste voorzitter van de organisatie?",
    "Хто був першим президентом організації?",
)


def question_mean(embedder: Embedder) -> np.ndarray:
    """The mean vector of :data:`QUESTIONS` as ``embedder`` embeds questions, kept in the model cache."""
    return _question_mean(embedder.name, embedder.query_prompt, embedder.precision, embedder)


@functools.lru_cache(maxsize=8)
def _question_mean(name: str, prompt: str, precision: str, embedder: Embedder) -> np.ndarray:
    key = hashlib.sha256(repr((name, prompt, precision, QUESTIONS)).encode()).hexdigest()[:16]
    cached = config.cache_dir() / f"question-mean-{key}.npy"
    try:
        mean = np.load(cached)
        if mean.shape == (embedder.dimension,):
            return mean
    except (OSError, ValueError):
        pass  # not computed yet on this machine, or unreadable: compute it again
    mean = embedder.embed_queries(list(QUESTIONS)).mean(axis=0).astype(np.float32)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".partial", delete=False) as file:
            np.save(file, mean)
        os.replace(file.name, cached)
    except OSError:
        pass  # a cache that cannot be written: computed again by the next process
    return mean


class LanguageMeans:
    """Each language's mean passage vector, from the sums and counts of every segment.

    Args:
        sums: Per segment, language (``""`` for unknown) -> (sum of its passages' vectors, how many).
        dimension: Vector size.
    """

    def __init__(self, sums: Sequence[Mapping[str, tuple[np.ndarray, int]]], dimension: int) -> None:
        totals: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        for part in sums:
            for language, (total, count) in part.items():
                totals[language] = totals.get(language, np.zeros(dimension)) + total
                counts[language] = counts.get(language, 0) + count
        overall = sum(totals.values(), np.zeros(dimension)) / max(sum(counts.values()), 1)
        self.languages = sorted(totals)
        passages = sum(counts.values())
        self.multilingual = bool(passages) and max(counts.values()) < ONE_LANGUAGE_FROM * passages
        self._row = {language: row for row, language in enumerate(self.languages)}
        means = [(totals[lang] + PRIOR_PASSAGES * overall) / (counts[lang] + PRIOR_PASSAGES) for lang in self.languages]
        # A last row of zeros for a language no segment has counted: such a passage is left as it is.
        self.means = np.vstack([*means, np.zeros(dimension)]).astype(np.float32)

    def similarities(self, query: np.ndarray, vectors: np.ndarray, languages: Sequence[str | None]) -> np.ndarray:
        """Centered similarities of ``vectors`` (a row each, of passages in ``languages``) to a centered ``query``
        (:func:`centered_query`)."""
        if not len(vectors):
            return np.zeros(0, dtype=np.float32)
        rows = [self._row.get(language or "", len(self.languages)) for language in languages]
        centered = vectors - self.means[rows]
        lengths = np.linalg.norm(centered, axis=1)
        return (centered @ query) / np.maximum(lengths, 1e-6)


def centered_query(embedder: Embedder, query: np.ndarray) -> np.ndarray:
    """The question's vector without the question mean, normalized again."""
    centered = query - question_mean(embedder)
    return (centered / max(float(np.linalg.norm(centered)), 1e-6)).astype(np.float32)

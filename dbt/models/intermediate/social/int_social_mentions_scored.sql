{#- The sentiment of each social mention, scored with a lexicon (seed sentiment_lexicon).

    The text is lower-cased, apostrophes dropped (don't -> dont, as in the lexicon) and split into
    words of letters. Each positive word
    counts +1 and each negative word -1, flipped when a negator (not, never, don't, ...) is one
    or two words before it. sentiment_score = (positive - negative) / (positive + negative), in
    [-1, 1], and 0 when the text has no word of the lexicon; sentiment is its sign (positive /
    neutral / negative). A transparent baseline, tuned by editing the seed; a model's scores can
    replace it here without changing the columns. -#}
with mentions as (
    select mention_id, mention_text from {{ ref('stg_social__mentions') }}
),

lexicon as (
    select lower(trim(term)) as term, kind from {{ ref('sentiment_lexicon') }}
),

words as (
    select mentions.mention_id, exploded.word_position, exploded.word
    from mentions
        lateral view posexplode(
            split(regexp_replace(lower(coalesce(mention_text, '')), "['’]", ''), '[^a-z]+')
        ) exploded as word_position, word
    where exploded.word != ''
),

lexicon_words as (
    select words.mention_id, words.word_position, lexicon.kind
    from words
    inner join lexicon on words.word = lexicon.term
),

negated_positions as (
    select distinct polar.mention_id, polar.word_position
    from lexicon_words as polar
    inner join lexicon_words as negator
        on polar.mention_id = negator.mention_id
        and negator.kind = 'negator'
        and negator.word_position between polar.word_position - 2 and polar.word_position - 1
    where polar.kind != 'negator'
),

word_polarities as (
    select
        lexicon_words.mention_id,
        case when lexicon_words.kind = 'positive' then 1 else -1 end
        * case when negated_positions.word_position is null then 1 else -1 end as polarity
    from lexicon_words
    left join negated_positions
        on lexicon_words.mention_id = negated_positions.mention_id
        and lexicon_words.word_position = negated_positions.word_position
    where lexicon_words.kind != 'negator'
),

counted as (
    select
        mention_id,
        sum(case when polarity > 0 then 1 else 0 end) as positive_words,
        sum(case when polarity < 0 then 1 else 0 end) as negative_words
    from word_polarities
    group by mention_id
),

scored as (
    select
        mentions.mention_id,
        cast(coalesce(counted.positive_words, 0) as int) as positive_words,
        cast(coalesce(counted.negative_words, 0) as int) as negative_words,
        cast(coalesce(
            (counted.positive_words - counted.negative_words) / (counted.positive_words + counted.negative_words),
            0
        ) as double) as sentiment_score
    from mentions
    left join counted on mentions.mention_id = counted.mention_id
),

labelled as (
    select
        *,
        case
            when sentiment_score > 0 then 'positive'
            when sentiment_score < 0 then 'negative'
            else 'neutral'
        end as sentiment
    from scored
)

select * from labelled
